package loop

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/autoscale"
	"github.com/kgate/kgate/deploy/inprocess"
)

// BenchmarkTick is one tick of the loop over 10,000 idle revisions at
// zero, with the autoscaler's metrics registered: what a Kubernetes
// controller's rounds wait for when they configure the loop (l.mu).
func BenchmarkTick(b *testing.B) {
	dep, err := inprocess.New(inprocess.Options{Handler: func(string) http.Handler { return http.NotFoundHandler() }})
	if err != nil {
		b.Fatal(err)
	}
	defer dep.Close()
	l, err := New(Options{Deployer: dep, Endpoints: &pushes{}, Metrics: &load{inflight: map[string]float64{}},
		Activators: activators, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	cfg := config.DefaultAutoscaler()
	cfg.AllowZeroInitialScale = true
	revs := make([]Revision, 10000)
	for i := range revs {
		name := fmt.Sprintf("svc-%05d", i)
		revs[i] = Revision{Key: "default/" + name + "-00001", Service: name, Configuration: name,
			Spec: autoscale.RevisionSpec{Annotations: annotations("initial-scale", "0")}}
	}
	ctx, now := context.Background(), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.Configure(ctx, now, cfg, revs)
	for b.Loop() {
		now = now.Add(2 * time.Second)
		l.Tick(ctx, now)
	}
}
