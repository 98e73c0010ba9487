package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// kgate local has no HorizontalPodAutoscaler: a revision of Knative's HPA
// class is not Ready, with a reason and message that say so, in `kgate get
// revisions` and on its Service, and runs no process; a KPA Service beside
// it serves as ever.
func TestHPAClassUnsupportedLocally(t *testing.T) {
	hpa := `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: scaled
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/class: hpa.autoscaling.knative.dev
        autoscaling.knative.dev/metric: cpu
        autoscaling.knative.dev/target: "70"
    spec:
      containers:
        - image: gcr.io/knative-samples/helloworld-go
`
	k := startKgate(t, map[string]string{"scaled.yaml": hpa, "hello.yaml": hello("hello", "World")})
	k.ready("hello", "hello.default.127.0.0.1.nip.io", "Hello World!", 30*time.Second)

	k.eventually("the HPA-class revision says why it is not Ready", 10*time.Second, func() error {
		rev, err := k.get("revisions", "scaled-00001")
		if err != nil {
			return err
		}
		if s := condition(rev, "Ready"); s != "False" {
			return fmt.Errorf("Ready %q, want False", s)
		}
		reason, msg := conditionMessage(rev, "Ready")
		if reason != "HPAClassUnsupported" || !strings.Contains(msg, "not supported by kgate local") {
			return fmt.Errorf("Ready reason %q message %q, want HPAClassUnsupported saying kgate local does not support it", reason, msg)
		}
		return nil
	})
	if table := k.table("revisions"); !strings.Contains(table, "HPAClassUnsupported") {
		t.Errorf("kgate get revisions does not show the reason:\n%s", table)
	}
	svc, err := k.get("ksvc", "scaled")
	if err != nil {
		t.Fatal(err)
	}
	if s := condition(svc, "Ready"); s != "False" {
		t.Errorf("Service scaled: Ready %q, want False", s)
	}
	if _, msg := conditionMessage(svc, "Ready"); !strings.Contains(msg, "not supported by kgate local") {
		t.Errorf("Service scaled: Ready message %q, want the revision's reason", msg)
	}
	if st := k.revisions()["scaled-00001"]; st.Actual != 0 {
		t.Errorf("the HPA-class revision runs %d replicas, want none", st.Actual)
	}
}
