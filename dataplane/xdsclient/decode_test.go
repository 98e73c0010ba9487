package xdsclient

import (
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestDecodeRejectsWhatEnvoyWould(t *testing.T) {
	wrap := func(m proto.Message) *discoveryv3.Resource {
		a, err := anypb.New(m)
		if err != nil {
			t.Fatal(err)
		}
		return &discoveryv3.Resource{Name: "r", Version: "1", Resource: a}
	}
	tests := []struct {
		name     string
		resource *discoveryv3.Resource
		wantErr  string
	}{
		{"a valid cluster", wrap(&clusterv3.Cluster{Name: "r"}), ""},
		{"another type", wrap(&endpointv3.ClusterLoadAssignment{ClusterName: "r"}), "ClusterLoadAssignment in a"},
		{"an invalid cluster", wrap(&clusterv3.Cluster{}), "invalid: "},
		{"no body", &discoveryv3.Resource{Name: "r"}, "no resource body"},
		{"an undecodable body", &discoveryv3.Resource{Name: "r", Resource: &anypb.Any{TypeUrl: resource.ClusterType, Value: []byte{0xff}}}, "decoding: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := decode(resource.ClusterType, []*discoveryv3.Resource{tt.resource}, []string{"gone"})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tt.wantErr == "":
				if c, ok := u.Resources[0].Message.(*clusterv3.Cluster); !ok || c.GetName() != "r" || u.Removed[0] != "gone" {
					t.Fatalf("update %+v, want cluster r and gone removed", u)
				}
			case err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), `resource "r": `):
				t.Fatalf("error %v, want one about resource r with %q", err, tt.wantErr)
			}
		})
	}
}

func TestBackoffDoublesUpToItsCap(t *testing.T) {
	b := Backoff{Initial: 100e6, Max: 1e9}.withDefaults() // 100 ms, 1 s
	for failures, want := range map[int]float64{1: 100e6, 2: 200e6, 3: 400e6, 4: 800e6, 5: 1e9, 50: 1e9} {
		for range 20 {
			steps := b.steps()
			var d time.Duration
			for range failures {
				d = steps.Step()
			}
			if d := float64(d); d < 0.8*want || d > 1.2*want {
				t.Fatalf("delay after %d failures %v, want %v ±20%%", failures, d, want)
			}
		}
	}
	if d := (Backoff{}).withDefaults(); d.Initial != DefaultBackoffInitial || d.Max != DefaultBackoffMax {
		t.Errorf("defaults %+v", d)
	}
}

// TestBackoffJittersBothWays: the jitter spreads waits on both sides of
// the nominal one, not only above it.
func TestBackoffJittersBothWays(t *testing.T) {
	b := Backoff{Initial: 100e6, Max: 1e9}.withDefaults()
	var below, above bool
	for range 200 {
		steps := b.steps()
		d := steps.Step()
		below, above = below || d < b.Initial, above || d > b.Initial
	}
	if !below || !above {
		t.Errorf("200 first waits all on one side of %v: below %v, above %v", b.Initial, below, above)
	}
}
