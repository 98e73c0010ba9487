package lrs

import (
	"strings"
	"testing"

	"github.com/kgate/kgate/translator"
)

func TestRevisionOf(t *testing.T) {
	tests := []struct {
		cluster string
		rev     string
		side    side
		ok      bool
	}{
		{cluster: translator.ClusterName("default/hello-00001"), rev: "default/hello-00001", side: gateway, ok: true},
		{cluster: translator.PodsName("default/hello-00001"), rev: "default/hello-00001", side: activator, ok: true},
		{cluster: "default/pods", rev: "default/pods", side: gateway, ok: true},
		{cluster: "default/pods/pods", rev: "default/pods", side: activator, ok: true},
		{cluster: "ns/a.b-c", rev: "ns/a.b-c", side: gateway, ok: true},
		{cluster: ""},
		{cluster: "xds_cluster"},
		{cluster: "external/default/hello"},
		{cluster: "default/hello/pod"},
		{cluster: "default/hello/pods/x"},
		{cluster: "/hello"},
		{cluster: "default/"},
		{cluster: "default//pods"},
		{cluster: "Default/Hello"},
		{cluster: "default/-hello"},
		{cluster: "default/hello."},
		{cluster: "default/hel lo"},
		{cluster: "default/héllo"},
		{cluster: "default/" + strings.Repeat("a", maxClusterName)},
	}
	for _, tt := range tests {
		rev, s, ok := revisionOf(tt.cluster)
		if rev != tt.rev || s != tt.side || ok != tt.ok {
			t.Errorf("revisionOf(%.40q) = %q, %v, %v; want %q, %v, %v", tt.cluster, rev, s, ok, tt.rev, tt.side, tt.ok)
		}
	}
}
