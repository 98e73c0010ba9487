package lrs

import (
	"testing"
	"time"

	"github.com/kgate/kgate/translator/model"
)

// t0 is the fake clock's start.
var t0 = time.Unix(1_000_000, 0)

// TestCollectAging: a silent reporter's in-flight count holds for MaxAge
// after its last report, then disappears; its issued requests are handed
// out once whatever happens to it.
func TestCollectAging(t *testing.T) {
	const maxAge = 3 * time.Second
	tests := []struct {
		name  string
		after time.Duration
		want  model.Stat
		live  bool
	}{
		{name: "on time", after: 0, want: model.Stat{Concurrency: 4, Requests: 9}, live: true},
		{name: "an interval late", after: time.Second, want: model.Stat{Concurrency: 4, Requests: 9}, live: true},
		{name: "at MaxAge", after: maxAge, want: model.Stat{Concurrency: 4, Requests: 9}, live: true},
		{name: "past MaxAge", after: maxAge + time.Millisecond, want: model.Stat{Requests: 9}},
		{name: "long gone", after: time.Hour, want: model.Stat{Requests: 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := newTable(maxAge)
			id := tab.open()
			tab.record(id, t0, map[sideRev]load{{gateway, "ns/rev"}: {inFlight: 4, issued: 9}})

			if got := tab.collect(t0.Add(tt.after)); got["ns/rev"] != tt.want {
				t.Errorf("collect after %s = %+v; want %+v", tt.after, got["ns/rev"], tt.want)
			}
			// The count aged out is forgotten, the one that held still
			// holds, and the issued requests are not handed out again.
			want := map[string]model.Stat{}
			if tt.live {
				want["ns/rev"] = model.Stat{Concurrency: 4}
			}
			checkStats(t, tab.collect(t0.Add(tt.after)), want)
		})
	}
}

// TestCollectLatestCount: a new report replaces its reporter's count,
// reports for other revisions leave it alone, and a closed stream's count
// goes at once while its issued requests stay.
func TestCollectLatestCount(t *testing.T) {
	tab := newTable(3 * time.Second)
	a, b := tab.open(), tab.open()
	tab.record(a, t0, map[sideRev]load{{gateway, "ns/one"}: {inFlight: 4, issued: 4}})
	tab.record(b, t0, map[sideRev]load{{gateway, "ns/one"}: {inFlight: 1, issued: 1}})
	tab.record(a, t0.Add(time.Second), map[sideRev]load{{gateway, "ns/one"}: {inFlight: 2, issued: 3}})
	tab.record(a, t0.Add(2*time.Second), map[sideRev]load{{gateway, "ns/two"}: {inFlight: 5, issued: 5}})

	checkStats(t, tab.collect(t0.Add(2*time.Second)), map[string]model.Stat{
		"ns/one": {Concurrency: 2 + 1, Requests: 4 + 1 + 3},
		"ns/two": {Concurrency: 5, Requests: 5},
	})

	tab.record(a, t0.Add(3*time.Second), map[sideRev]load{{gateway, "ns/two"}: {inFlight: 5, issued: 6}})
	tab.close(a)
	tab.record(a, t0.Add(3*time.Second), map[sideRev]load{{gateway, "ns/two"}: {inFlight: 7, issued: 7}})
	checkStats(t, tab.collect(t0.Add(3*time.Second)), map[string]model.Stat{
		"ns/one": {Concurrency: 1},
		"ns/two": {Requests: 6},
	})
}

// TestCollectSides: gateways and activators see the same proxied requests,
// so a revision's load is the larger side's, never their sum.
func TestCollectSides(t *testing.T) {
	for _, tt := range []struct {
		name              string
		gateway, activate *load
		want              model.Stat
	}{
		{"gateways only", &load{inFlight: 3, issued: 5}, nil, model.Stat{Concurrency: 3, Requests: 5}},
		{"activator first, a cold start", nil, &load{inFlight: 1, issued: 1}, model.Stat{Concurrency: 1, Requests: 1}},
		{"both see the proxied requests", &load{inFlight: 4, issued: 6}, &load{inFlight: 4, issued: 6}, model.Stat{Concurrency: 4, Requests: 6}},
		{"the activator is behind", &load{inFlight: 9, issued: 9}, &load{inFlight: 2, issued: 3}, model.Stat{Concurrency: 9, Requests: 9}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tab := newTable(3 * time.Second)
			if tt.gateway != nil {
				tab.record(tab.open(), t0, map[sideRev]load{{gateway, "ns/rev"}: *tt.gateway})
			}
			if tt.activate != nil {
				tab.record(tab.open(), t0, map[sideRev]load{{activator, "ns/rev"}: *tt.activate})
			}
			checkStats(t, tab.collect(t0), map[string]model.Stat{"ns/rev": tt.want})
		})
	}
}
