package main

import (
	"io"
	"strings"
	"testing"
)

// A malformed --default-certificate-secret is refused before the
// controller looks for an API server.
func TestControllerDefaultCertificateFlag(t *testing.T) {
	for _, bad := range []string{"just-a-name", "ns/", "a/b/c"} {
		cmd := newControllerCommand()
		cmd.SetArgs([]string{"--default-certificate-secret", bad, "--kubeconfig", "/nonexistent"})
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), "--default-certificate-secret") || !strings.Contains(err.Error(), "NAMESPACE/NAME") {
			t.Errorf("%q: got %v", bad, err)
		}
	}
}
