package activator

import (
	"maps"
	"net/http"
	"testing"

	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

func TestLoadsAreReportedUnderThePodsClusterName(t *testing.T) {
	h := newHarness(t, Options{})
	h.act.SetRevision(testKey, RevisionConfig{})
	pod := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	h.act.SetEndpoints(testKey, []model.Endpoint{startBackend(t, model.HTTP1, pod)})
	h.get(t, "/")
	h.get(t, "/fail")
	want := map[string]xdsclient.Load{translator.PodsName(testKey): {Issued: 2, Successful: 1, Errors: 1}}
	if got := h.act.loads(); !maps.Equal(got, want) {
		t.Errorf("loads %v, want %v", got, want)
	}
}
