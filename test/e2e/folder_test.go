package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hello is a helloworld-go Service answering "Hello <target>!".
func hello(name, target string) string {
	return `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: ` + name + `
spec:
  template:
    spec:
      containers:
        - image: gcr.io/knative-samples/helloworld-go
          env:
            - name: TARGET
              value: ` + target + "\n"
}

// conditionMessage returns the reason and message of an object's condition.
func conditionMessage(obj map[string]any, typ string) (reason, message string) {
	status, _ := obj["status"].(map[string]any)
	conds, _ := status["conditions"].([]any)
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			reason, _ = m["reason"].(string)
			message, _ = m["message"].(string)
		}
	}
	return reason, message
}

// answers waits until host answers want, within 2 s: a change to the
// watched files applies that fast.
func (k *kgate) answers(what, host, want string) {
	k.t.Helper()
	start := time.Now()
	k.eventually(what, 2*time.Second, func() error {
		code, body, err := k.request(context.Background(), host, "/")
		if err != nil || code != 200 || body != want {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		return nil
	})
	k.t.Logf("%s: applied in %s", what, time.Since(start).Round(time.Millisecond))
}

// A manifest that is a symlink applies its target's edits, and a
// ConfigMap-style folder applies an atomic ..data swap, within 2 s.
func TestFolderFollowsLinksAndConfigMapSwaps(t *testing.T) {
	outside := t.TempDir()
	target := filepath.Join(outside, "linked.yaml")
	if err := os.WriteFile(target, []byte(hello("linked", "one")), 0o644); err != nil {
		t.Fatal(err)
	}
	k := startKgate(t, map[string]string{})
	if err := os.Symlink(target, filepath.Join(k.dir, "linked.yaml")); err != nil {
		t.Fatal(err)
	}
	k.ready("linked", host("linked"), "Hello one!", 60*time.Second)
	// Edit the target in place, as `echo >> file` or a editor writing in place does.
	if err := os.WriteFile(target, []byte(hello("linked", "two")), 0o644); err != nil {
		t.Fatal(err)
	}
	k.answers("the link's target edited", host("linked"), "Hello two!")

	// A mounted ConfigMap in the same folder: its files are links through
	// ..data to a timestamped folder; an update makes a new folder and
	// renames a new ..data link over the old one, as the kubelet's atomic
	// writer does.
	cm := k.dir
	swap := func(n int, content string) {
		dir := fmt.Sprintf("..2026_12_04_22_00_0%d.%d", n, n)
		if err := os.MkdirAll(filepath.Join(cm, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cm, dir, "app.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		old, _ := os.Readlink(filepath.Join(cm, "..data"))
		if err := os.Symlink(dir, filepath.Join(cm, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(cm, "..data_tmp"), filepath.Join(cm, "..data")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(filepath.Join(cm, "app.yaml")); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", "app.yaml"), filepath.Join(cm, "app.yaml")); err != nil {
				t.Fatal(err)
			}
		}
		if old != "" {
			os.RemoveAll(filepath.Join(cm, old))
		}
	}
	swap(1, hello("mounted", "first"))
	k.ready("mounted", host("mounted"), "Hello first!", 60*time.Second)
	swap(2, hello("mounted", "second"))
	k.answers("a ..data swap", host("mounted"), "Hello second!")
	swap(3, hello("mounted", "third"))
	k.answers("another ..data swap", host("mounted"), "Hello third!")
	if out := k.table("ksvc"); strings.Count(out, "\nmounted ") != 1 {
		t.Errorf("the mounted Service is not listed once:\n%s", out)
	}

	// A subfolder is not read, as with kubectl apply -f DIR, and said so.
	if err := os.MkdirAll(filepath.Join(k.dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(k.dir, "sub", "sub.yaml"), []byte(hello("insub", "x")), 0o644); err != nil {
		t.Fatal(err)
	}
	k.eventually("the subfolder is reported", 5*time.Second, func() error {
		if !strings.Contains(k.logs.String(), "subfolder not read") {
			return fmt.Errorf("no log line about the subfolder")
		}
		return nil
	})
	if strings.Contains(k.table("ksvc"), "insub") {
		t.Errorf("a subfolder's Service was applied:\n%s", k.table("ksvc"))
	}
}

// One object declared in a second file: the version that was serving keeps
// serving, and the object's status names both files.
func TestDuplicateDeclarationDoesNotSwitch(t *testing.T) {
	k := startKgate(t, map[string]string{"good.yaml": hello("good", "original")})
	k.ready("good", host("good"), "Hello original!", 60*time.Second)
	// a-new.yaml sorts first: before, the first file by name won.
	k.write("a-new.yaml", hello("good", "newcomer"))
	k.eventually("the duplicate is reported on the Service", 10*time.Second, func() error {
		svc, err := k.get("ksvc", "good")
		if err != nil {
			return err
		}
		reason, msg := conditionMessage(svc, "Ready")
		if condition(svc, "Ready") != "False" || reason != "DuplicateDeclaration" ||
			!strings.Contains(msg, "good.yaml") || !strings.Contains(msg, "a-new.yaml") {
			return fmt.Errorf("Ready %s %s %q", condition(svc, "Ready"), reason, msg)
		}
		return nil
	})
	for range 50 {
		if code, body, err := k.request(context.Background(), host("good"), "/"); err != nil || code != 200 || body != "Hello original!" {
			t.Fatalf("with a duplicate declared: %d %q %v, want the original", code, body, err)
		}
	}
	if out := k.table("ksvc"); !strings.Contains(out, "DuplicateDeclaration") && !strings.Contains(out, "False") {
		t.Errorf("kgate get ksvc does not show the duplicate:\n%s", out)
	}
	// Removing the newcomer makes the Service Ready again, unchanged.
	if err := os.Remove(filepath.Join(k.dir, "a-new.yaml")); err != nil {
		t.Fatal(err)
	}
	k.ready("good", host("good"), "Hello original!", 30*time.Second)
}
