package e2e

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/kgate/kgate/localstate"
	"github.com/kgate/kgate/watcher/knative"
)

// The crash test: kgate local is killed with SIGKILL at a random point of a
// burst of manifest edits, four times. Each time its state store opens, and
// no revision name is ever bound to two templates, within a run or across
// them; after the last restart the file's last version serves.
func TestKillDuringEditsKeepsTheStoreConsistent(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	k := startKgate(t, map[string]string{"burst.yaml": hello("burst", "start")}, "--state-dir", state)
	k.ready("burst", host("burst"), "Hello start!", 60*time.Second)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	bound := map[string]string{} // revision → template digest, over every run
	last := "start"
	for round := range 4 {
		if round > 0 {
			k.launch()
		}
		// A burst of edits, one every 20-200 ms, and the kill somewhere in it.
		killAt := time.Now().Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
		for e := 0; time.Now().Before(killAt) || e < 2; e++ {
			last = fmt.Sprintf("r%d-e%d", round, e)
			k.write("burst.yaml", hello("burst", last))
			time.Sleep(time.Duration(20+rng.IntN(180)) * time.Millisecond)
		}
		k.kill9()

		st, err := localstate.Open(state, nil)
		if err != nil {
			t.Fatalf("round %d: the state store does not open after kill -9: %v", round, err)
		}
		sn, err := st.Load()
		st.Close()
		if err != nil {
			t.Fatalf("round %d: the state store does not load after kill -9: %v", round, err)
		}
		for _, rev := range sn.Stored.Revisions {
			d := rev.Annotations[knative.AnnotationTemplateDigest]
			if prev, ok := bound[rev.Name]; ok && prev != d {
				t.Errorf("round %d: %s bound to template %s, earlier to %s", round, rev.Name, d, prev)
			}
			bound[rev.Name] = d
		}
		t.Logf("round %d: killed during the burst; %d revisions stored", round, len(sn.Stored.Revisions))
	}
	k.launch()
	k.ready("burst", host("burst"), "Hello "+last+"!", 60*time.Second)
}
