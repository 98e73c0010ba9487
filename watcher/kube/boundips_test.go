package kube

import (
	"fmt"
	"testing"
)

// TestBoundIPs: the xDS server's certificate names the IP its address
// binds, and none for a wildcard or a name.
func TestBoundIPs(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:18000": "[127.0.0.1]",
		"[::1]:18000":     "[::1]",
		"0.0.0.0:18000":   "[]",
		":18000":          "[]",
		"[::]:18000":      "[]",
		"localhost:18000": "[]",
		"not an address":  "[]",
		"10.0.0.7:0":      "[10.0.0.7]",
	} {
		if got := fmt.Sprint(boundIPs(addr)); got != want {
			t.Errorf("boundIPs(%q) = %s, want %s", addr, got, want)
		}
	}
}
