package xds

import (
	"slices"
	"strings"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// A gateway asks for a host's certificate by name (Envoy's on-demand
// secrets, by SNI): it gets it; a rotation is one push of that secret
// alone; a name with no certificate is answered as removed at once, so
// that the handshake waiting for it fails rather than hangs.
func TestSecretsOnDemand(t *testing.T) {
	h := newHarness(t, model.Config{})
	for _, host := range []string{"a.example.com", "b.example.com"} {
		if err := h.eng.SetSecret(translator.Secret(host, []byte("cert "+host), []byte("key "+host))); err != nil {
			t.Fatal(err)
		}
	}
	gw := h.delta(t, gatewayNode)
	gw.subscribe(resource.SecretType, "a.example.com")
	resp := gw.next(resource.SecretType)
	if got := deltaNames(resp); !slices.Equal(got, []string{"a.example.com"}) {
		t.Fatalf("first response %v, want a.example.com only", got)
	}
	gw.ack(resp)

	// Rotation: one push, of that secret.
	if err := h.eng.SetSecret(translator.Secret("a.example.com", []byte("cert 2"), []byte("key 2"))); err != nil {
		t.Fatal(err)
	}
	resp = gw.next(resource.SecretType)
	if got := deltaNames(resp); !slices.Equal(got, []string{"a.example.com"}) || len(resp.GetRemovedResources()) > 0 {
		t.Fatalf("rotation pushed %v, removed %v; want a.example.com only", got, resp.GetRemovedResources())
	}
	gw.ack(resp)
	// A secret the gateway did not ask for is not pushed to it.
	if err := h.eng.SetSecret(translator.Secret("b.example.com", []byte("cert 3"), []byte("key 3"))); err != nil {
		t.Fatal(err)
	}
	gw.none()

	gw.subscribe(resource.SecretType, "nobody.example.com")
	resp = gw.next(resource.SecretType)
	if len(resp.GetResources()) != 0 || !slices.Equal(resp.GetRemovedResources(), []string{"nobody.example.com"}) {
		t.Fatalf("a name with no certificate: resources %v, removed %v; want it removed", deltaNames(resp), resp.GetRemovedResources())
	}
	gw.ack(resp)

	// Deleting a secret removes it from the gateway that holds it.
	if err := h.eng.DeleteSecret("a.example.com"); err != nil {
		t.Fatal(err)
	}
	resp = gw.next(resource.SecretType)
	if !slices.Equal(resp.GetRemovedResources(), []string{"a.example.com"}) {
		t.Fatalf("delete: removed %v, want a.example.com", resp.GetRemovedResources())
	}
	// The key never reaches the log.
	if logs := h.logs.String(); strings.Contains(logs, "key 2") || strings.Contains(logs, "key 3") {
		t.Errorf("a private key in the log:\n%s", h.logs.String())
	}
}
