package knative

import (
	"fmt"

	"github.com/kgate/kgate/api/config"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
)

// CertificatePhase is how far the certificate of an object's hosts served
// over TLS has come.
type CertificatePhase int

// The phases, as Knative's route and domain-mapping reconcilers tell them
// apart.
const (
	// CertificateUnmanaged: no issuer makes it; the hosts are served with a
	// certificate from elsewhere (kgate local's CA, a default certificate),
	// which counts as provisioned.
	CertificateUnmanaged CertificatePhase = iota
	// CertificateReady: the issuer has issued it.
	CertificateReady
	// CertificateIssuing: asked for, not issued yet.
	CertificateIssuing
	// CertificateFailed: the issuer gave up on it.
	CertificateFailed
)

// CertificateState is what the issuer says of the certificate of an
// object's hosts (Input.Certificate).
type CertificateState struct {
	Phase CertificatePhase
	// Name is the certificate's, for the condition's message.
	Name string
	// Message is the issuer's word on a failure.
	Message string
}

// ConditionCertificateProvisioned is the Route condition of the
// certificate of its hosts served over TLS, as Knative's.
const ConditionCertificateProvisioned servingv1.ConditionType = "CertificateProvisioned"

// downgrade says which of an object's hosts are served over plain HTTP
// while their certificate is issued (http-protocol Enabled).
type downgrade struct{ external, local bool }

// url is u, over plain HTTP when its hosts are downgraded.
func (d downgrade) url(u *servingv1.URL, external bool) *servingv1.URL {
	if u == nil || u.Scheme != "https" || (external && !d.external) || (!external && !d.local) {
		return u
	}
	return httpURL(u.Host)
}

// certificateCondition is CertificateProvisioned for an object whose hosts
// are served over TLS (external, local), as Knative sets it: True with
// TLSNotEnabled when none are; Unknown CertificateNotReady while issued
// (Ready waits), unless http-protocol is Enabled, when the hosts are served
// over HTTP meanwhile (True, HTTPDowngrade); False when issuing failed.
func (rd *round) certificateCondition(kind, ns, name string, external, local bool) (cond, downgrade) {
	if !external && !local {
		c := condTrue(ConditionCertificateProvisioned)
		c.reason, c.message = v1beta1.ReasonTLSNotEnabled, v1beta1.MessageTLSNotEnabled
		return c, downgrade{}
	}
	if rd.in.Certificate == nil {
		return condTrue(ConditionCertificateProvisioned), downgrade{}
	}
	var worst CertificateState
	var issuing downgrade
	for _, side := range [2]bool{false, true} {
		if (side && !local) || (!side && !external) {
			continue
		}
		st := rd.in.Certificate(kind, ns, name, side)
		if st.Phase == CertificateIssuing {
			if side {
				issuing.local = true
			} else {
				issuing.external = true
			}
		}
		if st.Phase > worst.Phase {
			worst = st
		}
	}
	switch worst.Phase {
	case CertificateFailed:
		msg := fmt.Sprintf(v1beta1.MessageCertificateProvisionFailed, worst.Name)
		if worst.Message != "" {
			msg += " " + worst.Message
		}
		return condFalse(ConditionCertificateProvisioned, v1beta1.ReasonCertificateProvisionFailed, msg), downgrade{}
	case CertificateIssuing:
		if rd.r.settings.Network.HTTPProtocol == config.HTTPProtocolEnabled {
			c := condTrue(ConditionCertificateProvisioned)
			c.reason, c.message = v1beta1.ReasonHTTPDowngrade, fmt.Sprintf(v1beta1.MessageHTTPDowngrade, worst.Name)
			return c, issuing
		}
		return condUnknown(ConditionCertificateProvisioned, v1beta1.ReasonCertificateNotReady,
			fmt.Sprintf(v1beta1.MessageCertificateNotReady, worst.Name)), downgrade{}
	}
	return condTrue(ConditionCertificateProvisioned), downgrade{}
}
