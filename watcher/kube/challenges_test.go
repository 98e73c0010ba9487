package kube

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/watcher/knative"
)

func challenge(name, uid, typ, host, token string) *unstructured.Unstructured {
	o := &unstructured.Unstructured{}
	o.SetGroupVersionKind(ChallengeGVK)
	o.SetNamespace("default")
	o.SetName(name)
	o.SetUID(types.UID(uid))
	o.Object["spec"] = map[string]any{"type": typ, "dnsName": host, "token": token, "key": token + ".key"}
	return o
}

func solverService(name, ownerUID, ip string) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{LabelHTTP01Solver: "true"}},
		Spec:       corev1.ServiceSpec{ClusterIP: ip, Ports: []corev1.ServicePort{{Name: "http", Port: 8089}}},
	}
	if ownerUID != "" {
		s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "acme.cert-manager.io/v1", Kind: "Challenge", Name: "x", UID: types.UID(ownerUID), Controller: ptr.To(true)}}
	}
	return s
}

// Each round passes the HTTP-01 Challenges that have a solver Service they
// control, with its cluster IP and port; DNS-01 Challenges, Challenges whose
// solver is not there yet and Services another Challenge owns are left
// out; a headless solver and a challenge for a host nothing serves are
// logged once each.
func TestReadChallenges(t *testing.T) {
	scheme := testScheme(t)
	scheme.AddKnownTypeWithName(ChallengeGVK, &unstructured.Unstructured{})
	scheme.AddKnownTypeWithName(ChallengeGVK.GroupVersion().WithKind("ChallengeList"), &unstructured.UnstructuredList{})
	objs := []client.Object{
		challenge("a", "uid-a", "HTTP-01", "Hello.default.example.com", "tok-a"),
		challenge("b", "uid-b", "HTTP-01", "nobody.example.com", "tok-b"),
		challenge("dns", "uid-dns", "DNS-01", "hello.default.example.com", "tok-dns"),
		challenge("pending", "uid-pending", "HTTP-01", "hello.default.example.com", "tok-p"),
		challenge("headless", "uid-h", "HTTP-01", "hello.default.example.com", "tok-h"),
		solverService("cm-acme-http-solver-a", "uid-a", "10.96.0.1"),
		solverService("cm-acme-http-solver-b", "uid-b", "10.96.0.2"),
		solverService("cm-acme-http-solver-dns", "uid-dns", "10.96.0.3"),
		solverService("cm-acme-http-solver-h", "uid-h", corev1.ClusterIPNone),
		solverService("stray", "uid-other", "10.96.0.4"),
	}
	cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	c := &Controller{log: log, client: cl}
	c.acme.watched = true

	res := &knative.Result{Model: model.Config{Services: []model.Service{{Namespace: "default", Name: "hello",
		VirtualHosts: []model.VirtualHost{{Host: "hello.default.example.com"}}}}}}
	want := []knative.Challenge{
		{Host: "hello.default.example.com", Path: "/.well-known/acme-challenge/tok-a", Namespace: "default", Service: "cm-acme-http-solver-a", Port: 8089, Address: "10.96.0.1"},
		{Host: "nobody.example.com", Path: "/.well-known/acme-challenge/tok-b", Namespace: "default", Service: "cm-acme-http-solver-b", Port: 8089, Address: "10.96.0.2"},
	}
	for round := range 2 {
		s := &snapshot{}
		if err := c.readChallenges(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(s.challenges, want) {
			t.Fatalf("round %d: challenges\n%+v\nwant\n%+v", round, s.challenges, want)
		}
		c.unservedChallenges(s.challenges, res)
	}
	out := logs.String()
	if n := strings.Count(out, "no Route or DomainMapping serves"); n != 1 || !strings.Contains(out, "host=nobody.example.com") {
		t.Errorf("the unserved challenge logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "without a cluster IP"); n != 1 || !strings.Contains(out, "service=cm-acme-http-solver-h") {
		t.Errorf("the headless solver logged %d times, want once:\n%s", n, out)
	}

	// Not watched (no CRD): none, and not nil, so that the last round's go.
	c.acme.watched = false
	s := &snapshot{}
	if err := c.readChallenges(context.Background(), s); err != nil || s.challenges == nil || len(s.challenges) != 0 {
		t.Errorf("unwatched: %v, %v; want an empty list", s.challenges, err)
	}
}
