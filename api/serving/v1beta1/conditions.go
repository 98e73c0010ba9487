package v1beta1

import servingv1 "github.com/kgate/kgate/api/serving/v1"

// Condition types of a DomainMapping, Knative's. Ready is derived from the
// others (see Conditions) as in Knative's living condition sets.
const (
	// ConditionReady is True when the domain is claimed, the reference
	// resolved, the certificate settled and the gateways serve the domain.
	ConditionReady = servingv1.ConditionReady
	// ConditionDomainClaimed is True when this mapping holds the domain:
	// no other mapping, in any namespace, claimed it first.
	ConditionDomainClaimed servingv1.ConditionType = "DomainClaimed"
	// ConditionReferenceResolved is True when spec.ref names an existing
	// Service or Route with an address.
	ConditionReferenceResolved servingv1.ConditionType = "ReferenceResolved"
	// ConditionCertificateProvisioned is True when the domain's certificate
	// is ready, is the user's (spec.tls), or is not needed (TLS off).
	ConditionCertificateProvisioned servingv1.ConditionType = "CertificateProvisioned"
	// ConditionIngressReady is True when every gateway serves the domain.
	ConditionIngressReady = servingv1.ConditionIngressReady
)

// Conditions are the conditions Ready is derived from, in Knative's order:
// Ready takes the first False one, else the first Unknown one, else True.
var Conditions = []servingv1.ConditionType{
	ConditionDomainClaimed,
	ConditionReferenceResolved,
	ConditionIngressReady,
	ConditionCertificateProvisioned,
}

// Reasons and messages Knative's DomainMapping reconciler sets, by the
// condition they go with. A message with %s takes the named value.
const (
	// DomainClaimed False: another mapping holds the domain.
	ReasonDomainAlreadyClaimed  = "DomainAlreadyClaimed"
	MessageDomainAlreadyClaimed = "The domain name is already in use by another DomainMapping"
	// DomainClaimed False: the claim could not be made (its message is the
	// error, such as no ClusterDomainClaim while
	// autocreate-cluster-domain-claims is off).
	ReasonDomainClaimFailed = "DomainClaimFailed"

	// ReferenceResolved False: spec.ref does not resolve; the message says
	// why.
	ReasonResolveFailed = "ResolveFailed"

	// CertificateProvisioned True: TLS is off for external domains.
	ReasonTLSNotEnabled  = "TLSNotEnabled"
	MessageTLSNotEnabled = "external-domain-tls is not enabled"
	// CertificateProvisioned True: spec.tls names the certificate.
	ReasonCertificateExternallyProvided  = "CertificateExternallyProvided"
	MessageCertificateExternallyProvided = "TLS certificate was provided externally"
	// CertificateProvisioned Unknown: the certificate is being issued.
	ReasonCertificateNotReady  = "CertificateNotReady"
	MessageCertificateNotReady = "Certificate %s is not ready."
	// CertificateProvisioned False: a certificate of that name exists and
	// is not this mapping's.
	ReasonCertificateNotOwned  = "CertificateNotOwned"
	MessageCertificateNotOwned = "There is an existing certificate %s that we don't own."
	// CertificateProvisioned False: issuing the certificate failed.
	ReasonCertificateProvisionFailed  = "CertificateProvisionFailed"
	MessageCertificateProvisionFailed = "Certificate %s failed to be provisioned."
	// CertificateProvisioned True: the certificate is not ready and
	// http-protocol is Enabled, so the domain is served over HTTP meanwhile.
	ReasonHTTPDowngrade  = "HTTPDowngrade"
	MessageHTTPDowngrade = "Certificate %s is not ready downgrade HTTP."

	// IngressReady Unknown: the gateways do not serve the domain yet.
	ReasonIngressNotConfigured  = "IngressNotConfigured"
	MessageIngressNotConfigured = "Ingress has not yet been reconciled."
)
