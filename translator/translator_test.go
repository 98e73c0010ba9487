package translator

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/kgate/kgate/translator/model"
)

// TestTranslateIsComposition: Translate equals the per-item functions the
// xds engine calls incrementally, Services in conflict left out.
func TestTranslateIsComposition(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/in/*.yaml")
	for _, in := range inputs {
		cfg := readConfig(t, in)
		idx := NewHostIndex()
		for _, s := range cfg.Services {
			idx.Set(s)
		}
		want := Listeners(Options{})
		for _, s := range cfg.Services {
			if _, lost := idx.Conflict(s.Key()); !lost {
				want.merge(Service(s, Options{}))
			}
		}
		for _, r := range cfg.Revisions {
			want.merge(Revision(r, Options{}))
		}
		for _, e := range cfg.Endpoints {
			want.merge(Endpoints(e, Options{}))
		}
		want.Conflicts = idx.Conflicts()
		sortOutput(&want)
		if got := Translate(cfg, Options{}); string(render(t, got)) != string(render(t, want)) {
			t.Errorf("%s: Translate differs from the per-item translation", in)
		}
	}
}

func TestOptions(t *testing.T) {
	out := Listeners(Options{ExternalAddress: "127.0.0.1", ExternalPort: 18080, InternalAddress: "127.0.0.2", InternalPort: 18081})
	assertValid(t, out)
	for i, want := range []string{"external 127.0.0.1:18080", "internal 127.0.0.2:18081"} {
		l := out.Listeners[i]
		sa := l.GetAddress().GetSocketAddress()
		if got := fmt.Sprintf("%s %s:%d", l.GetName(), sa.GetAddress(), sa.GetPortValue()); got != want {
			t.Errorf("listener %d = %s, want %s", i, got, want)
		}
	}

	rev := model.Revision{Namespace: "default", Name: "hello-00001", Protocol: model.HTTP1}
	if c := Revision(rev, Options{}).Clusters[0]; c.GetLrsServer() != nil {
		t.Errorf("lrs_server set without LoadReporting: %v", c.GetLrsServer())
	}
	c := Revision(rev, Options{LoadReporting: true}).Clusters[0]
	if c.GetLrsServer().GetSelf() == nil {
		t.Errorf("lrs_server = %v, want self", c.GetLrsServer())
	}
	assertValid(t, Output{Clusters: []*clusterv3.Cluster{c}})
}

// TestServiceBadInput: bad input is reported by CheckService with the field
// and the rule, and Service still emits valid resources without the bad part.
func TestServiceBadInput(t *testing.T) {
	good := func() model.Route {
		return model.Route{PathPrefix: "/", Splits: []model.Split{{Revision: "default/hello-00001", Percent: 100}}}
	}
	svc := func(vhs ...model.VirtualHost) model.Service {
		return model.Service{Namespace: "default", Name: "hello", VirtualHosts: vhs}
	}
	vh := func(host string, routes ...model.Route) model.VirtualHost {
		return model.VirtualHost{Host: host, Visibility: model.External, Routes: routes}
	}
	tests := []struct {
		name    string
		svc     model.Service
		wantErr string
		// want is a summary of the emitted routes: "listener host: route ..."
		want []string
	}{{
		name:    "invalid host is left out",
		svc:     svc(vh("Hello_World.example.com", good()), vh("ok.example.com", good())),
		wantErr: "virtualHosts[0].host: Invalid value",
		want:    []string{"external ok.example.com: / -> default/hello-00001"},
	}, {
		name:    "repeated host is served once",
		svc:     svc(vh("a.example.com", good()), vh("a.example.com", good())),
		wantErr: "virtualHosts[1].host: Duplicate value",
		want:    []string{"external a.example.com: / -> default/hello-00001"},
	}, {
		name: "unknown visibility is internal only",
		svc: svc(model.VirtualHost{Host: "a.example.com", Visibility: "public",
			Routes: []model.Route{good()}}),
		wantErr: "virtualHosts[0].visibility: Unsupported value",
		want:    []string{"internal a.example.com: / -> default/hello-00001"},
	}, {
		name: "route without leading slash is left out",
		svc: svc(vh("a.example.com", model.Route{PathPrefix: "api",
			Splits: []model.Split{{Revision: "default/x", Percent: 100}}}, good())),
		wantErr: "virtualHosts[0].routes[0].pathPrefix: Invalid value",
		want:    []string{"external a.example.com: / -> default/hello-00001"},
	}, {
		name: "route with an invalid header match is left out, not widened",
		svc: svc(vh("a.example.com", model.Route{PathPrefix: "/", Headers: []model.HeaderMatch{{Name: "bad header", Value: "x"}},
			Splits: []model.Split{{Revision: "default/x", Percent: 100}}}, good())),
		wantErr: "virtualHosts[0].routes[0].headers[0].name: Invalid value",
		want:    []string{"external a.example.com: / -> default/hello-00001"},
	}, {
		name: "invalid set header is dropped",
		svc: svc(vh("a.example.com", model.Route{PathPrefix: "/", Splits: []model.Split{{Revision: "default/hello-00001", Percent: 100,
			SetHeaders: []model.Header{{Name: "ok", Value: "line\nbreak"}}}}})),
		wantErr: "virtualHosts[0].routes[0].splits[0].setHeaders[0].value: Invalid value",
		want:    []string{"external a.example.com: / -> default/hello-00001"},
	}, {
		name: "no positive split answers 503",
		svc: svc(vh("a.example.com", model.Route{PathPrefix: "/",
			Splits: []model.Split{{Revision: "default/hello-00001", Percent: 0}}})),
		wantErr: "virtualHosts[0].routes[0].splits: Invalid value: 0: percents must sum to 100",
		want:    []string{"external a.example.com: / -> 503; / -> default/hello-00001 (warm: never matches)"},
	}, {
		name: "negative timeout is no timeout",
		svc: svc(vh("a.example.com", model.Route{PathPrefix: "/", Timeout: -time.Second,
			Splits: []model.Split{{Revision: "default/hello-00001", Percent: 100}}})),
		wantErr: "virtualHosts[0].routes[0].timeout: Invalid value",
		want:    []string{"external a.example.com: / -> default/hello-00001"},
	}, {
		name: "invalid route header is dropped",
		svc: svc(vh("a.example.com", model.Route{PathPrefix: "/", SetHeaders: []model.Header{{Name: "bad header", Value: "x"}},
			Splits: []model.Split{{Revision: "default/hello-00001", Percent: 100}}})),
		wantErr: "virtualHosts[0].routes[0].setHeaders[0].name: Invalid value",
		want:    []string{"external a.example.com: / -> default/hello-00001"},
	}, {
		name: "negative per-try timeout is none",
		svc: svc(vh("a.example.com", model.Route{PathPrefix: "/", Retries: &model.Retries{Attempts: 1, PerTryTimeout: -time.Second},
			Splits: []model.Split{{Revision: "default/hello-00001", Percent: 100}}})),
		wantErr: "virtualHosts[0].routes[0].retries.perTryTimeout: Invalid value",
		want:    []string{"external a.example.com: / -> default/hello-00001"},
	}, {
		name:    "missing names",
		svc:     model.Service{},
		wantErr: "namespace: Required value, name: Required value",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckService(tt.svc)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("CheckService = %v, want it to contain %q", err, tt.wantErr)
			}
			out := Service(tt.svc, Options{})
			assertValid(t, out)
			if got := summarize(out); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("routes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestCheckServiceAcceptsGoldenInputs(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/in/*.yaml")
	for _, in := range inputs {
		for _, s := range readConfig(t, in).Services {
			if err := CheckService(s); err != nil {
				t.Errorf("%s: %s: %v", in, s.Key(), err)
			}
		}
	}
}

func summarize(out Output) []string {
	var lines []string
	for _, rc := range out.Routes {
		listener, _, _ := strings.Cut(rc.GetName(), "/")
		for _, vh := range rc.GetVirtualHosts() {
			var rs []string
			for _, r := range vh.GetRoutes() {
				target := fmt.Sprint(r.GetDirectResponse().GetStatus())
				if wc := r.GetRoute().GetWeightedClusters(); wc != nil {
					var names []string
					for _, c := range wc.GetClusters() {
						names = append(names, c.GetName())
					}
					target = strings.Join(names, ",")
				}
				if r.GetMatch().GetRuntimeFraction() != nil {
					target += " (warm: never matches)"
				}
				rs = append(rs, r.GetMatch().GetPrefix()+" -> "+target)
			}
			lines = append(lines, listener+" "+vh.GetName()+": "+strings.Join(rs, "; "))
		}
	}
	return lines
}

// A revision a route names at 0 % is listed in a route that never
// matches, so that clients hold its cluster before a change sends it
// traffic; one another split routes to is not listed again.
func TestWarmRoute(t *testing.T) {
	out := Service(model.Service{Namespace: "default", Name: "a", VirtualHosts: []model.VirtualHost{{Host: "a.example.com", Visibility: model.External, Routes: []model.Route{
		{PathPrefix: "/", Splits: []model.Split{
			{Revision: "default/a-00002", Percent: 100}, {Revision: "default/a-00001", Percent: 0}, {Revision: "default/a-00003", Percent: 0},
		}},
		{PathPrefix: "/", Headers: []model.HeaderMatch{{Name: "Knative-Serving-Tag", Value: "old"}}, Splits: []model.Split{
			{Revision: "default/a-00003", Percent: 100},
		}},
	}}}}, Options{})
	want := []string{"external a.example.com: / -> default/a-00003; / -> default/a-00002; / -> default/a-00001 (warm: never matches)"}
	if got := summarize(out); !reflect.DeepEqual(got, want) {
		t.Errorf("routes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	warm := out.Routes[0].GetVirtualHosts()[0].GetRoutes()[2]
	if f := warm.GetMatch().GetRuntimeFraction().GetDefaultValue(); f == nil || f.GetNumerator() != 0 {
		t.Errorf("the warm route matches %v of requests, want none", f)
	}
	if err := warm.ValidateAll(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// A host's certificate is an SDS secret named by the host, valid as Envoy
// reads it.
func TestSecret(t *testing.T) {
	s := Secret("hello.default.example.com", []byte("-----BEGIN CERTIFICATE-----"), []byte("-----BEGIN PRIVATE KEY-----"))
	if err := s.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	if s.GetName() != "hello.default.example.com" || string(s.GetTlsCertificate().GetPrivateKey().GetInlineBytes()) != "-----BEGIN PRIVATE KEY-----" {
		t.Errorf("secret %v", s)
	}
}

// An ExternalName revision is a LOGICAL_DNS cluster holding its name and
// port, without EDS; an invalid one stays an EDS cluster (no endpoints).
func TestExternalNameCluster(t *testing.T) {
	for _, tc := range []struct {
		ext     model.Endpoint
		logical bool
	}{
		{model.Endpoint{Address: "example.com", Port: 443}, true},
		{model.Endpoint{Address: "svc.ns.svc.cluster.local.", Port: 80}, true},
		{model.Endpoint{Address: "10.0.0.1", Port: 80}, true},
		{model.Endpoint{Address: "", Port: 80}, false},
		{model.Endpoint{Address: "Not A Name", Port: 80}, false},
		{model.Endpoint{Address: "example.com", Port: 0}, false},
		{model.Endpoint{Address: "example.com", Port: 70000}, false},
	} {
		ext := tc.ext
		c := Revision(model.Revision{Namespace: "default", Name: "ext:80", ExternalName: &ext}, Options{}).Clusters[0]
		assertValid(t, Output{Clusters: []*clusterv3.Cluster{c}})
		if c.GetName() != ClusterName("default/ext:80") {
			t.Errorf("%v: cluster %q", ext, c.GetName())
		}
		if got := c.GetType() == clusterv3.Cluster_LOGICAL_DNS; got != tc.logical {
			t.Errorf("%v: type %v, want LOGICAL_DNS %v", ext, c.GetType(), tc.logical)
			continue
		}
		if !tc.logical {
			if c.GetEdsClusterConfig() == nil || c.GetLoadAssignment() != nil {
				t.Errorf("%v: want an EDS cluster, got %v", ext, c)
			}
			continue
		}
		sa := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
		if c.GetEdsClusterConfig() != nil || sa.GetAddress() != ext.Address || sa.GetPortValue() != ext.Port {
			t.Errorf("%v: eds %v, endpoint %v", ext, c.GetEdsClusterConfig(), sa)
		}
	}
}
