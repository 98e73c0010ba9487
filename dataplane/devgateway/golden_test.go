package devgateway_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"sigs.k8s.io/yaml"

	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/xds"
)

// The gateway accepts everything the translator emits for its golden
// inputs: each model, published in turn to one gateway, is ACKed
// resource by resource, and nothing is ever NACKed; with the HTTPS
// listeners too.
func TestAcceptsTranslatorOutput(t *testing.T) {
	inputs, err := filepath.Glob("../../translator/testdata/in/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no translator golden inputs: %v", err)
	}
	for _, opts := range []translator.Options{{}, {LoadReporting: true}, {
		ExternalTLSPort: translator.DefaultExternalTLSPort, InternalTLSPort: translator.DefaultInternalTLSPort,
		HTTPSRedirectPort: translator.DefaultExternalTLSPort, XFFNumTrustedHops: 1,
	}} {
		name := fmt.Sprintf("LoadReporting=%v,TLS=%v", opts.LoadReporting, opts.ExternalTLSPort != 0)
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envOptions{translator: opts})
			for _, in := range inputs {
				t.Run(strings.TrimSuffix(filepath.Base(in), ".yaml"), func(t *testing.T) {
					// A model.Config in YAML, as the translator's golden test reads it.
					data, err := os.ReadFile(in)
					if err != nil {
						t.Fatal(err)
					}
					var cfg model.Config
					if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
						t.Fatal(err)
					}
					if err := e.eng.Update(cfg); err != nil {
						t.Fatal(err)
					}
					want := subscribed(translator.Translate(cfg, opts))
					eventually(t, "every resource ACKed", func() error {
						if nacks := e.nacks.all(); len(nacks) > 0 {
							t.Fatalf("NACKs:\n%s", strings.Join(nacks, "\n"))
						}
						for _, r := range want {
							if err := e.acked(r); err != nil {
								return err
							}
						}
						return nil
					})
				})
			}
		})
	}
}

// typedResource is a resource with its type URL.
type typedResource struct {
	typeURL string
	name    string
	res     types.Resource
}

// subscribed lists the resources of out that a gateway subscribes to:
// the gateway listeners, every scope, route configuration and cluster,
// and the load assignments the clusters name (not the activator's
// "/pods" ones).
func subscribed(out translator.Output) []typedResource {
	var rs []typedResource
	for _, l := range out.Listeners {
		rs = append(rs, typedResource{resource.ListenerType, l.GetName(), l})
	}
	for _, s := range out.ScopedRoutes {
		rs = append(rs, typedResource{resource.ScopedRouteType, s.GetName(), s})
	}
	for _, r := range out.Routes {
		rs = append(rs, typedResource{resource.RouteType, r.GetName(), r})
	}
	named := map[string]bool{}
	for _, c := range out.Clusters {
		rs = append(rs, typedResource{resource.ClusterType, c.GetName(), c})
		named[c.GetEdsClusterConfig().GetServiceName()] = true
	}
	for _, cla := range out.Endpoints {
		if named[cla.GetClusterName()] {
			rs = append(rs, typedResource{resource.EndpointType, cla.GetClusterName(), cla})
		}
	}
	return rs
}

// acked checks that the gateway ACKed r's current version.
func (e *env) acked(r typedResource) error {
	want, err := xds.ResourceVersion(r.res)
	if err != nil {
		return err
	}
	for _, a := range e.srv.Acked(r.typeURL, r.name) {
		if a.NodeID == nodeID && a.Version == want {
			return nil
		}
	}
	return fmt.Errorf("%s %s not ACKed at %s", r.typeURL, r.name, want)
}
