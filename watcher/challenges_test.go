package watcher

import (
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/watcher/knative"
)

// endpointsRouting records, in order, what a pass pushes: endpoints set
// and deleted, and routings (their Services' first route paths).
type endpointsRouting struct {
	mu  sync.Mutex
	log []string
}

func (r *endpointsRouting) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, s)
}

func (r *endpointsRouting) UpdateRouting(services []model.Service, _ []model.Revision) error {
	var paths []string
	for _, s := range services {
		for _, vh := range s.VirtualHosts {
			if vh.Host == "hello.default.example.com" && len(vh.Routes) > 0 {
				paths = append(paths, vh.Routes[0].PathPrefix)
			}
		}
	}
	r.add("routing " + strings.Join(paths, ","))
	return nil
}

func (r *endpointsRouting) SetEndpoints(ep model.RevisionEndpoints) error {
	r.add("set " + ep.Revision)
	return nil
}

func (r *endpointsRouting) DeleteEndpoints(rev string) error {
	r.add("delete " + rev)
	return nil
}

func (r *endpointsRouting) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.log
	r.log = nil
	return out
}

// A Change's Challenges reach the reconciler; the solver's endpoints are
// pushed before the routing that names them, once, and removed after the
// routing that no longer does.
func TestPipelineChallenges(t *testing.T) {
	r := &endpointsRouting{}
	p := New(Options{Routing: r, Now: func() time.Time { return t0 }, Logger: slog.New(slog.DiscardHandler)})
	ch := knative.Challenge{Host: "hello.default.example.com", Path: "/.well-known/acme-challenge/tok",
		Namespace: "default", Service: "solver", Port: 8089, Address: "10.96.0.9"}
	p.Apply(Change{Objects: decode(t, service("hello", "img")), Challenges: []knative.Challenge{ch}})
	want := []string{"set default/acme:solver", "routing /.well-known/acme-challenge/tok"}
	if got := r.take(); !reflect.DeepEqual(got, want) {
		t.Errorf("first pass pushed %q, want %q", got, want)
	}
	// The challenges stay until replaced; the endpoints are not pushed again.
	p.Apply(Change{})
	if got := r.take(); !reflect.DeepEqual(got, []string{"routing /.well-known/acme-challenge/tok"}) {
		t.Errorf("an empty change pushed %q", got)
	}
	p.Apply(Change{Challenges: []knative.Challenge{}})
	want = []string{"routing /", "delete default/acme:solver"}
	if got := r.take(); !reflect.DeepEqual(got, want) {
		t.Errorf("the challenge gone: pushed %q, want %q", got, want)
	}
}
