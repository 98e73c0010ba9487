package localstate

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/watcher/knative"
)

// revision is a stored Revision named name, made from template digest.
func revision(name, digest string, ready bool) *servingv1.Revision {
	r := &servingv1.Revision{ObjectMeta: metav1.ObjectMeta{
		Namespace: "default", Name: name,
		Labels:      map[string]string{knative.LabelConfiguration: "split"},
		Annotations: map[string]string{knative.AnnotationTemplateDigest: digest},
	}}
	if ready {
		r.Status.Conditions = []servingv1.Condition{{Type: servingv1.ConditionReady, Status: "True"}}
	}
	return r
}

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, []string{"/manifests"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSaveAndLoad(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	res := &knative.Result{
		Services:  []*servingv1.Service{{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "split"}}},
		Revisions: []*servingv1.Revision{revision("split-00001", "d1", true), revision("split-00002", "d2", false)},
	}
	declared := []knative.Declared{{Kind: "Service", Namespace: "default", Name: "split", Generation: 2, Spec: "{}"}}
	if err := s.SaveObjects(res, declared); err != nil {
		t.Fatal(err)
	}
	// A later pass without split-00002 deletes it.
	res.Revisions = res.Revisions[:1]
	if err := s.SaveObjects(res, declared); err != nil {
		t.Fatal(err)
	}
	type record struct{ PID int }
	if err := s.SaveReplicas([]record{{PID: 42}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Keep("ca", []byte("certificate")); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, dir)
	sn, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(sn.Stored.Services) != 1 || len(sn.Stored.Revisions) != 1 || sn.Stored.Revisions[0].Name != "split-00001" {
		t.Errorf("loaded %d services and revisions %v, want split and split-00001 only", len(sn.Stored.Services), names(sn.Stored.Revisions))
	}
	if got := strings.Join(sn.Ready, " "); got != "default/split-00001" {
		t.Errorf("ready %q, want default/split-00001", got)
	}
	if len(sn.Stored.Declared) != 1 || sn.Stored.Declared[0].Generation != 2 {
		t.Errorf("declared %+v, want the Service at generation 2", sn.Stored.Declared)
	}
	var recs []record
	if err := s.Replicas(&recs); err != nil || len(recs) != 1 || recs[0].PID != 42 {
		t.Errorf("replicas %v (%v), want pid 42", recs, err)
	}

	// Reset forgets everything but the kept values.
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	sn, err = s.Load()
	if err != nil || !sn.Empty() {
		t.Errorf("after Reset: %+v (%v), want nothing", sn, err)
	}
	recs = nil
	if err := s.Replicas(&recs); err != nil || recs != nil {
		t.Errorf("after Reset: replicas %v (%v), want none", recs, err)
	}
	if got := string(s.Kept("ca")); got != "certificate" {
		t.Errorf("after Reset: kept ca %q, want it kept", got)
	}
}

// A second process on one state folder is refused, with the folder named.
func TestOpenRefusesASecondUser(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	start := time.Now()
	_, err := Open(dir, nil)
	if err == nil || !strings.Contains(err.Error(), "another kgate local is using it") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second Open: %v, want an error naming %s and saying it is in use", err, dir)
	}
	if d := time.Since(start); d > 5*OpenTimeout {
		t.Errorf("second Open took %s", d)
	}
}

func TestDirFor(t *testing.T) {
	a, _ := DirFor("/state", []string{"/work/app", "/work/lib/x.yaml"})
	b, _ := DirFor("/state", []string{"/work/lib/x.yaml", "/work/app/", "/work/app"})
	c, _ := DirFor("/state", []string{"/work/app"})
	if a != b {
		t.Errorf("the same paths in another order: %s and %s", a, b)
	}
	if a == c {
		t.Errorf("other paths share %s", a)
	}
	if filepath.Dir(a) != "/state" || !strings.HasPrefix(filepath.Base(a), "app-") {
		t.Errorf("state folder %s, want /state/app-<digest>", a)
	}
	t.Setenv("XDG_STATE_HOME", "/xdg")
	if base, _ := DefaultBase(); base != "/xdg/kgate" {
		t.Errorf("DefaultBase %s, want /xdg/kgate", base)
	}
}

func names(revs []*servingv1.Revision) []string {
	var out []string
	for _, r := range revs {
		out = append(out, r.Name)
	}
	return out
}

// The crash test: a writer process saves a burst of passes, each making the
// next revision of a Configuration from a new template, and is killed with
// SIGKILL at a random point. Every time, the store opens, and every
// revision name is bound to the one template it was made from, revisions 1
// to k all there (no pass half written).
func TestKilledWriterLeavesAConsistentStore(t *testing.T) {
	if os.Getenv(writerEnv) != "" {
		t.Skip("this is the writer")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestWriter$")
		cmd.Env = append(os.Environ(), writerEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for it to have saved a few passes, then kill it between (or
		// during) writes.
		lines := bufio.NewScanner(out)
		want := 1 + rng.IntN(30)
		for n := 0; n < want && lines.Scan(); n++ {
		}
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		cmd.Process.Kill()
		cmd.Wait()

		s, err := Open(dir, nil)
		if err != nil {
			t.Fatalf("round %d: the store does not open after a kill: %v", round, err)
		}
		sn, err := s.Load()
		s.Close()
		if err != nil {
			t.Fatalf("round %d: the store does not load after a kill: %v", round, err)
		}
		seen := map[string]string{}
		for _, r := range sn.Stored.Revisions {
			n, _ := strconv.Atoi(strings.TrimPrefix(r.Name, "split-"))
			if want := digestOf(n); r.Annotations[knative.AnnotationTemplateDigest] != want {
				t.Errorf("round %d: %s bound to template %s, want %s", round, r.Name, r.Annotations[knative.AnnotationTemplateDigest], want)
			}
			seen[r.Name] = r.Annotations[knative.AnnotationTemplateDigest]
		}
		for i := 1; i <= len(seen); i++ {
			if _, ok := seen[fmt.Sprintf("split-%05d", i)]; !ok {
				t.Errorf("round %d: %d revisions stored but split-%05d missing", round, len(seen), i)
			}
		}
		t.Logf("round %d: killed after %d passes seen; %d revisions stored", round, want, len(seen))
	}
}

const writerEnv = "KGATE_LOCALSTATE_WRITER"

func digestOf(n int) string { return fmt.Sprintf("template-%d", n) }

// TestWriter is the crash test's writer: it goes on from what the store
// holds, one new revision per pass, printing a line after each save.
func TestWriter(t *testing.T) {
	dir := os.Getenv(writerEnv)
	if dir == "" {
		t.Skip("run by TestKilledWriterLeavesAConsistentStore")
	}
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	sn, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	res := &knative.Result{Revisions: sn.Stored.Revisions}
	for i := len(res.Revisions) + 1; ; i++ {
		res.Revisions = append(res.Revisions, revision(fmt.Sprintf("split-%05d", i), digestOf(i), i%2 == 0))
		if err := s.SaveObjects(res, nil); err != nil {
			t.Fatal(err)
		}
		fmt.Println("saved", i)
	}
}
