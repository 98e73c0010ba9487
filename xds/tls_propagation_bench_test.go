package xds

import (
	"fmt"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// BenchmarkPropagationTLS is BenchmarkPropagation with HTTPS on: the
// external-tls listener, every host served over TLS with http-protocol
// Redirected and its certificate an SDS secret the gateway holds.
//
//   - change: one Service's split changes, bringing no new certificate:
//     the push must cost what it costs without TLS, whatever N.
//   - new-certificate: a host's certificate is issued anew (a new Service,
//     or a rotation): one SDS secret pushed alone, no listener, whatever N.
func BenchmarkPropagationTLS(b *testing.B) {
	now := time.Now()
	ca, err := pki.NewCA("bench", now, 0)
	if err != nil {
		b.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueHost([]string{"svc-0.default.example.com"}, now, 0)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{100, 10000} {
		cfg := fleet(n)
		for i := range cfg.Services {
			for j := range cfg.Services[i].VirtualHosts {
				vh := &cfg.Services[i].VirtualHosts[j]
				vh.TLS, vh.HTTP = true, model.HTTPRedirected
			}
		}
		h := newHarnessWith(b, cfg, EngineOptions{Translator: translator.Options{
			ExternalTLSPort: translator.DefaultExternalTLSPort, HTTPSRedirectPort: translator.DefaultExternalTLSPort,
		}})
		var hosts []string
		for _, svc := range cfg.Services {
			host := svc.VirtualHosts[0].Host
			hosts = append(hosts, host)
			// The same certificate bytes under every name: the cost measured
			// is the push, not the signing.
			if err := h.eng.SetSecret(translator.Secret(host, certPEM, keyPEM)); err != nil {
				b.Fatal(err)
			}
		}
		gw := subscribeEverythingWith(b, h, cfg, 3, hosts, nil)

		b.Run(fmt.Sprintf("services=%d/change", n), func(b *testing.B) {
			var bytes, pushes int
			for i := 0; b.Loop(); i++ {
				svc := cfg.Services[i%n]
				p := uint32(10 + (i/n)%80)
				vh := vhost(svc.VirtualHosts[0].Host, model.External,
					split(svc.VirtualHosts[0].Routes[0].Splits[0].Revision, p),
					split(svc.VirtualHosts[0].Routes[0].Splits[1].Revision, 100-p))
				vh.TLS, vh.HTTP = true, model.HTTPRedirected
				svc.VirtualHosts = []model.VirtualHost{vh}
				if err := h.eng.SetService(svc); err != nil {
					b.Fatal(err)
				}
				resp := gw.next(resource.RouteType)
				if len(resp.GetResources()) != 1 {
					b.Fatalf("push %d carried %v", i, deltaNames(resp))
				}
				bytes += proto.Size(resp)
				pushes++
				gw.ack(resp)
			}
			b.ReportMetric(float64(bytes)/float64(pushes), "bytes/push")
		})
		b.Run(fmt.Sprintf("services=%d/new-certificate", n), func(b *testing.B) {
			var bytes, pushes int
			for i := 0; b.Loop(); i++ {
				host := hosts[i%n]
				// A fresh certificate each time: new bytes, as a rotation.
				c, k, err := ca.IssueHost([]string{host}, now, 0)
				if err != nil {
					b.Fatal(err)
				}
				if err := h.eng.SetSecret(translator.Secret(host, c, k)); err != nil {
					b.Fatal(err)
				}
				resp := gw.next(resource.SecretType)
				if len(resp.GetResources()) != 1 || resp.GetResources()[0].GetName() != host {
					b.Fatalf("push %d carried %v, want %s alone", i, deltaNames(resp), host)
				}
				bytes += proto.Size(resp)
				pushes++
				gw.ack(resp)
			}
			b.ReportMetric(float64(bytes)/float64(pushes), "bytes/push")
			gw.none() // no listener, no route followed the certificate
		})
	}
}
