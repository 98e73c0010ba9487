package knative

import (
	"reflect"
	"testing"
	"time"

	"github.com/kgate/kgate/translator/model"
)

// An HTTP-01 challenge's path is routed to its solver first on its host (a
// Route's or a DomainMapping's), on no other host; its solver is in the
// model with its endpoints; a challenge for a host nothing serves is left
// out.
func TestChallengeRoutes(t *testing.T) {
	const tlsNetwork = `apiVersion: v1
kind: ConfigMap
metadata:
  name: config-network
  namespace: knative-serving
data:
  external-domain-tls: Enabled
  http-protocol: Redirected`
	mapping := `apiVersion: serving.knative.dev/v1beta1
kind: DomainMapping
metadata:
  name: hello.localtest.me
spec:
  ref:
    name: hello
    kind: Service
    apiVersion: serving.knative.dev/v1`
	// The mapping holds its domain without a ClusterDomainClaim.
	const autocreate = `apiVersion: v1
kind: ConfigMap
metadata:
  name: config-network
  namespace: knative-serving
data:
  autocreate-cluster-domain-claims: "true"`
	solver := func(host, token, svc string) Challenge {
		return Challenge{Host: host, Path: "/.well-known/acme-challenge/" + token, Namespace: "default", Service: svc, Port: 8089, Address: "10.96.0.7"}
	}
	type want struct {
		host, path, revision string
	}
	for _, tc := range []struct {
		name       string
		objs       []string
		challenges []Challenge
		want       []want   // the first route of each host named, all others have no challenge route
		solvers    []string // model revisions of solvers
	}{{
		name:       "route host",
		objs:       []string{service("hello", "img"), tagged("other", "v1")},
		challenges: []Challenge{solver("hello.default.example.com", "tok1", "cm-acme-http-solver-a")},
		want:       []want{{"hello.default.example.com", "/.well-known/acme-challenge/tok1", "default/acme:cm-acme-http-solver-a"}},
		solvers:    []string{"default/acme:cm-acme-http-solver-a"},
	}, {
		name:       "tag host, with TLS redirected",
		objs:       []string{tagged("other", "v1"), tlsNetwork},
		challenges: []Challenge{solver("v1-other.default.example.com", "tok2", "cm-acme-http-solver-b")},
		want:       []want{{"v1-other.default.example.com", "/.well-known/acme-challenge/tok2", "default/acme:cm-acme-http-solver-b"}},
		solvers:    []string{"default/acme:cm-acme-http-solver-b"},
	}, {
		name: "domain mapping, and the route's host, two solvers",
		objs: []string{service("hello", "img"), mapping, autocreate},
		challenges: []Challenge{
			solver("hello.localtest.me", "tok3", "cm-acme-http-solver-c"),
			solver("hello.default.example.com", "tok4", "cm-acme-http-solver-d"),
		},
		want: []want{
			{"hello.localtest.me", "/.well-known/acme-challenge/tok3", "default/acme:cm-acme-http-solver-c"},
			{"hello.default.example.com", "/.well-known/acme-challenge/tok4", "default/acme:cm-acme-http-solver-d"},
		},
		solvers: []string{"default/acme:cm-acme-http-solver-c", "default/acme:cm-acme-http-solver-d"},
	}, {
		name:       "host nobody serves",
		objs:       []string{service("hello", "img")},
		challenges: []Challenge{solver("nobody.example.com", "tok5", "cm-acme-http-solver-e")},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReconciler(func() time.Time { return t0 })
			res := r.Reconcile(Input{Objects: decode(t, tc.objs...), Challenges: tc.challenges})
			first := map[string]want{}
			for _, w := range tc.want {
				first[w.host] = w
			}
			seen := map[string]bool{}
			for _, svc := range res.Model.Services {
				for _, vh := range svc.VirtualHosts {
					for i, rt := range vh.Routes {
						acme := len(rt.Splits) == 1 && len(rt.Splits[0].Revision) > 0 && rt.PathPrefix != "/"
						w, ok := first[vh.Host]
						switch {
						case ok && i == 0:
							got := want{vh.Host, rt.PathPrefix, ""}
							if len(rt.Splits) == 1 && rt.Splits[0].Percent == 100 && len(rt.Headers) == 0 {
								got.revision = rt.Splits[0].Revision
							}
							if got != w {
								t.Errorf("%s: first route %+v, want %+v", vh.Host, rt, w)
							}
							seen[vh.Host] = true
						case acme:
							t.Errorf("%s: route %d %+v: a challenge route where none belongs", vh.Host, i, rt)
						}
					}
				}
			}
			for h := range first {
				if !seen[h] {
					t.Errorf("%s: not in the model", h)
				}
			}
			var solvers []string
			for _, rev := range res.Model.Revisions {
				if len(rev.Name) > len(ACMERevisionPrefix) && rev.Name[:len(ACMERevisionPrefix)] == ACMERevisionPrefix {
					solvers = append(solvers, rev.Key())
					if rev.Protocol != model.HTTP1 {
						t.Errorf("solver %s: protocol %q", rev.Key(), rev.Protocol)
					}
				}
			}
			var eps []string
			for _, ep := range res.Model.Endpoints {
				eps = append(eps, ep.Revision)
				if ep.Mode != model.Serve || !reflect.DeepEqual(ep.Pods, []model.Endpoint{{Address: "10.96.0.7", Port: 8089}}) {
					t.Errorf("solver endpoints %+v, want Serve at 10.96.0.7:8089", ep)
				}
			}
			if !reflect.DeepEqual(solvers, tc.solvers) || !reflect.DeepEqual(eps, tc.solvers) {
				t.Errorf("solver revisions %v, endpoints %v; want %v", solvers, eps, tc.solvers)
			}
			// Solvers are not Knative Revisions: the autoscaler never sees them.
			for _, rev := range res.Revisions {
				if rev.Name[:min(len(rev.Name), len(ACMERevisionPrefix))] == ACMERevisionPrefix {
					t.Errorf("solver %s among the Revisions", rev.Name)
				}
			}
			// The challenge gone, its route and solver go.
			res = r.Reconcile(Input{Objects: decode(t, tc.objs...)})
			if len(res.Model.Endpoints) != 0 {
				t.Errorf("after the challenge: endpoints %+v", res.Model.Endpoints)
			}
			for _, svc := range res.Model.Services {
				for _, vh := range svc.VirtualHosts {
					for _, rt := range vh.Routes {
						if rt.PathPrefix != "/" {
							t.Errorf("after the challenge: %s has route %+v", vh.Host, rt)
						}
					}
				}
			}
		})
	}
}
