package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gcNow is a config-gc that collects a replaced revision as soon as no
// Route sends it traffic.
const gcNow = `apiVersion: v1
kind: ConfigMap
metadata:
  name: config-gc
data:
  min-non-active-revisions: "0"
  retain-since-create-time: "0s"
  retain-since-last-active-time: "0s"
`

// replicasOf lists the pids of the replicas running revision, by the
// K_REVISION of their environment.
func replicasOf(revision string) []int {
	var out []int
	want := []byte("K_REVISION=" + revision)
	for _, pid := range processesOf(kgateBin) {
		env, err := os.ReadFile(filepath.Join("/proc", fmt.Sprint(pid), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(kv, want) {
				out = append(out, pid)
			}
		}
	}
	return out
}

// In kgate local a revision config-gc collects leaves kgate get revisions,
// its replicas stop, and its history leaves the state store: a restart does
// not bring it back.
func TestReplacedRevisionIsCollected(t *testing.T) {
	k := startKgate(t, map[string]string{"gc.yaml": hello("gc", "v1"), "config-gc.yaml": gcNow})
	k.ready("gc", host("gc"), "Hello v1!", 60*time.Second)
	if len(replicasOf("gc-00001")) == 0 {
		t.Fatal("gc-00001 has no replica running: the check below proves nothing")
	}
	k.write("gc.yaml", hello("gc", "v2"))
	k.ready("gc", host("gc"), "Hello v2!", 60*time.Second)

	k.eventually("gc-00001 collected: not listed, no replica left", 60*time.Second, func() error {
		if out := k.table("revisions"); strings.Contains(out, "gc-00001") || !strings.Contains(out, "gc-00002") {
			return fmt.Errorf("kgate get revisions, want gc-00002 alone:\n%s", out)
		}
		if left := replicasOf("gc-00001"); len(left) > 0 {
			return fmt.Errorf("replicas of gc-00001 still running: %v", left)
		}
		return nil
	})

	k.interrupt()
	k.launch()
	k.ready("gc", host("gc"), "Hello v2!", 60*time.Second)
	if out := k.table("revisions"); strings.Contains(out, "gc-00001") {
		t.Errorf("kgate get revisions after a restart lists the collected revision:\n%s", out)
	}
}
