package kube

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
)

func TestClusterServesVersionAndNamespaces(t *testing.T) {
	Require(t)
	c := Start(t)
	t.Logf("kube-apiserver at %s, assets %s", c.URL, c.AssetsDir)

	status, body, err := c.Do(http.MethodGet, "/version", nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /version: %d %v %s", status, err, body)
	}
	var v version.Info
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET /version: %v: %s", err, body)
	}
	if !strings.HasPrefix(v.GitVersion, "v1.36.") {
		t.Errorf("GET /version: gitVersion %q, want v1.36.x", v.GitVersion)
	}

	ns := corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: "kgate-test", Labels: map[string]string{"app": "kgate"}},
	}
	status, body, err = c.Do(http.MethodPost, "/api/v1/namespaces", ns)
	if err != nil || status != http.StatusCreated {
		t.Fatalf("POST /api/v1/namespaces: %d %v %s", status, err, body)
	}

	status, body, err = c.Do(http.MethodGet, "/api/v1/namespaces/kgate-test", nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /api/v1/namespaces/kgate-test: %d %v %s", status, err, body)
	}
	var got corev1.Namespace
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("GET namespace: %v: %s", err, body)
	}
	if got.Name != "kgate-test" || got.Labels["app"] != "kgate" || got.UID == "" {
		t.Errorf("namespace read back = name %q labels %v uid %q", got.Name, got.Labels, got.UID)
	}
	if got.Status.Phase != corev1.NamespaceActive {
		t.Errorf("namespace phase = %q, want Active", got.Status.Phase)
	}

	// A request without the token is not the admin.
	status, _, err = (&Cluster{URL: c.URL, Token: "wrong", CertFile: c.CertFile, client: c.client}).Do(http.MethodGet, "/api/v1/namespaces", nil)
	if err != nil || status != http.StatusUnauthorized {
		t.Errorf("GET with a wrong token: %d %v, want 401", status, err)
	}
}
