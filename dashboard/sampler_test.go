package dashboard

import (
	"maps"
	"testing"
	"time"

	"github.com/kgate/kgate/translator/model"
)

var t0 = time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)

func TestSampler(t *testing.T) {
	type step struct {
		after    time.Duration // since t0
		obs      []Observation
		requests map[string]float64
	}
	a, b := "default/a-00001", "default/b-00001"
	tests := []struct {
		name         string
		length, max  int
		steps        []step
		want         map[string][]Point // by key; keys absent have no series
		wantRevision int
	}{{
		name: "rate over the elapsed time, first over the interval", length: 5, max: 10,
		steps: []step{
			{0, []Observation{{a, 1, 1}}, map[string]float64{a: 4}},
			{2 * time.Second, []Observation{{a, 1, 2}}, map[string]float64{a: 10}},
			{3 * time.Second, []Observation{{a, 2, 2}}, nil},
		},
		want: map[string][]Point{a: {
			{At: t0, Actual: 1, Desired: 1, RPS: 4},
			{At: t0.Add(2 * time.Second), Actual: 1, Desired: 2, RPS: 5},
			{At: t0.Add(3 * time.Second), Actual: 2, Desired: 2, RPS: 0},
		}},
	}, {
		name: "the ring keeps the last length points, oldest first", length: 2, max: 10,
		steps: []step{
			{0, []Observation{{a, 1, 1}}, nil},
			{time.Second, []Observation{{a, 2, 2}}, nil},
			{2 * time.Second, []Observation{{a, 3, 3}}, nil},
		},
		want: map[string][]Point{a: {
			{At: t0.Add(time.Second), Actual: 2, Desired: 2},
			{At: t0.Add(2 * time.Second), Actual: 3, Desired: 3},
		}},
	}, {
		name: "a revision gone is dropped, a new one starts empty", length: 5, max: 10,
		steps: []step{
			{0, []Observation{{a, 1, 1}, {b, 0, -1}}, map[string]float64{b: 1}},
			{time.Second, []Observation{{b, 0, 0}}, map[string]float64{a: 7}},
		},
		want: map[string][]Point{b: {
			{At: t0, Actual: 0, Desired: -1, RPS: 1},
			{At: t0.Add(time.Second), Actual: 0, Desired: 0},
		}},
	}, {
		name: "beyond max revisions the first by key are kept", length: 5, max: 1,
		steps: []step{
			{0, []Observation{{b, 1, 1}, {a, 2, 2}, {a, 2, 2}}, nil},
		},
		want: map[string][]Point{a: {{At: t0, Actual: 2, Desired: 2}}},
	}, {
		name: "a clock going back counts over the interval", length: 5, max: 10,
		steps: []step{
			{time.Second, []Observation{{a, 1, 1}}, nil},
			{0, []Observation{{a, 1, 1}}, map[string]float64{a: 3}},
		},
		want: map[string][]Point{a: {
			{At: t0.Add(time.Second), Actual: 1, Desired: 1},
			{At: t0, Actual: 1, Desired: 1, RPS: 3},
		}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSampler(tt.length, tt.max)
			for _, st := range tt.steps {
				s.Record(t0.Add(st.after), st.obs, st.requests, time.Second)
			}
			if s.Len() != len(tt.want) {
				t.Errorf("%d revisions with points, want %d", s.Len(), len(tt.want))
			}
			for _, key := range []string{a, b} {
				got, want := s.Series(key), tt.want[key]
				if len(got) != len(want) {
					t.Fatalf("%s: %d points %v, want %v", key, len(got), got, want)
				}
				for i := range got {
					if got[i] != want[i] {
						t.Errorf("%s point %d: %+v, want %+v", key, i, got[i], want[i])
					}
				}
			}
		})
	}
}

type fixedLoad map[string]model.Stat

func (f fixedLoad) Collect(time.Time) map[string]model.Stat { return f }

func TestRequestsTap(t *testing.T) {
	src := fixedLoad{"default/a": {Concurrency: 2, Requests: 3}, "default/b": {Concurrency: 1}}
	r := Tap(src)
	for range 2 {
		if got := r.Collect(t0); !maps.Equal(got, src) {
			t.Fatalf("Collect passed %v, want %v", got, src)
		}
	}
	if got := r.Take(); !maps.Equal(got, map[string]float64{"default/a": 6}) {
		t.Errorf("Take = %v, want default/a: 6", got)
	}
	if got := r.Take(); len(got) != 0 {
		t.Errorf("second Take = %v, want nothing", got)
	}
}
