package devgateway_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	loadstatsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/kgate/kgate/dataplane/xdsclient/lrstest"
	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// The gateway reports each cluster's load over LRS, requests in progress
// included, so that the autoscaler sees demand through it as through
// Envoy.
func TestLoadReports(t *testing.T) {
	lrs, lrsAddr := lrstest.Start(t, &loadstatsv3.LoadStatsResponse{
		SendAllClusters:       true,
		LoadReportingInterval: durationpb.New(50 * time.Millisecond),
	})
	e := newEnv(t, envOptions{translator: translator.Options{LoadReporting: true}, lrsAddr: lrsAddr})
	release := make(chan struct{})
	held := newBackend(t, "held", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
		w.Write([]byte("held"))
	})
	failing := newBackend(t, "failing", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	e.update(apps(
		app{name: "held", pods: []model.Endpoint{held.endpoint}},
		app{name: "failing", pods: []model.Endpoint{failing.endpoint}},
	))
	c, ext := client(t), e.addr(translator.ExternalListener)
	awaitBody(t, c, ext, externalHost("held"), "/", "held")
	eventually(t, "the failing service routed", func() error {
		return expect(get(t, c, ext, externalHost("failing"), "/", nil), http.StatusInternalServerError, "boom\n")
	})

	const inFlight = 3
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			if _, err := do(c, http.MethodGet, ext, externalHost("held"), "/hold", nil); err != nil {
				t.Errorf("held request: %v", err)
			}
		})
	}
	defer wg.Wait()
	defer close(release)

	cluster := translator.ClusterName(revKey("held-00001"))
	req := lrs.Await(t, "3 requests in progress", func(r lrstest.Request) bool {
		return inProgress(r, cluster) == inFlight
	})
	t.Logf("report with %d in progress on %s after the requests started", inProgress(req, cluster), cluster)

	// A 5xx counts as an error. Reports carry what happened since the
	// last one: add them up.
	if r := get(t, c, ext, externalHost("failing"), "/", nil); r.status != http.StatusInternalServerError {
		t.Fatalf("failing: got %d, want 500", r.status)
	}
	var errs, successes uint64
	lrs.Await(t, "the failing cluster's error", func(r lrstest.Request) bool {
		for _, l := range r.Cluster(translator.ClusterName(revKey("failing-00001"))).GetUpstreamLocalityStats() {
			errs += l.GetTotalErrorRequests()
			successes += l.GetTotalSuccessfulRequests()
		}
		return errs > 0
	})
	if successes != 0 {
		t.Errorf("the failing cluster reported %d successful requests", successes)
	}
}

func inProgress(r lrstest.Request, cluster string) uint64 {
	cs := r.Cluster(cluster)
	var n uint64
	for _, l := range cs.GetUpstreamLocalityStats() {
		n += l.GetTotalRequestsInProgress()
	}
	return n
}
