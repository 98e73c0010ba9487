package xdsclient_test

import (
	"slices"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// secret is a host's SDS secret; the PEM is a placeholder, which the
// client does not read.
func secret(host, version string) *tlsv3.Secret {
	return translator.Secret(host, []byte("cert "+version), []byte("key "+version))
}

// Secrets subscribed to by name at run time, as a gateway asks for them
// during TLS handshakes: a name the server holds arrives, one it does not
// hold comes back Absent at once and stays subscribed (it arrives once
// the server has it), a rotation arrives alone, a deletion is Removed, and
// an unsubscribed name gets nothing more. A reconnection asks again for
// every name.
func TestNamedSubscriptionsOnDemand(t *testing.T) {
	srv := startXDS(t, model.Config{})
	srv.must(srv.eng.SetSecret(secret("a.example.com", "1")))
	c, err := xdsclient.New(dial(t, srv.addr), xdsclient.Options{Node: xdsclient.Node{ID: "gateway-" + t.Name()}, Backoff: fastBackoff})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	w := c.Watch(resource.SecretType, rec.handle) // nothing asked yet: no request
	run(t, c.Run)
	rec.none(t)
	if err := c.Err(); err != nil {
		t.Errorf("Err with a watch of names only: %v", err)
	}

	w.Subscribe("a.example.com")
	u := rec.next(t)
	expectUpdate(t, u, []string{"a.example.com"}, nil)
	if s, ok := u.Resources[0].Message.(*tlsv3.Secret); !ok || string(s.GetTlsCertificate().GetCertificateChain().GetInlineBytes()) != "cert 1" {
		t.Fatalf("got %T %v, want secret a.example.com at cert 1", u.Resources[0].Message, u.Resources[0].Message)
	}

	w.Subscribe("nobody.example.com")
	u = rec.next(t)
	expectUpdate(t, u, nil, nil)
	if !slices.Equal(u.Absent, []string{"nobody.example.com"}) {
		t.Fatalf("absent %v, want [nobody.example.com]", u.Absent)
	}
	// Still subscribed: it arrives once the server has it.
	srv.must(srv.eng.SetSecret(secret("nobody.example.com", "2")))
	expectUpdate(t, rec.next(t), []string{"nobody.example.com"}, nil)

	// A rotation is that secret alone.
	srv.must(srv.eng.SetSecret(secret("a.example.com", "3")))
	u = rec.next(t)
	expectUpdate(t, u, []string{"a.example.com"}, nil)
	if len(u.Absent) != 0 {
		t.Fatalf("absent %v in a rotation", u.Absent)
	}

	// A deletion removes what the handler held.
	srv.must(srv.eng.DeleteSecret("a.example.com"))
	expectUpdate(t, rec.next(t), nil, []string{"a.example.com"})

	// Unsubscribed: nothing more, even when the server has it again.
	w.Unsubscribe("nobody.example.com")
	rec.none(t)
	srv.must(srv.eng.SetSecret(secret("nobody.example.com", "4")))
	rec.none(t)

	// A new stream asks for every name again: a.example.com, deleted, is
	// absent; the server now has it again.
	srv.restart(model.Config{})
	srv.must(srv.eng.SetSecret(secret("b.example.com", "5")))
	w.Subscribe("b.example.com")
	var got, absent []string
	for len(got)+len(absent) < 2 {
		u := rec.next(t)
		got = append(got, names(u)...)
		absent = append(absent, u.Absent...)
	}
	if !slices.Equal(got, []string{"b.example.com"}) || !slices.Equal(absent, []string{"a.example.com"}) {
		t.Fatalf("after a restart: got %v, absent %v; want [b.example.com], absent [a.example.com]", got, absent)
	}
}
