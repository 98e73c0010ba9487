package inflight

import (
	"math"
	"testing"
)

func TestBudgetFor(t *testing.T) {
	for _, tc := range []struct {
		limit int
		want  Budget
	}{
		// The numbers the package doc (and docs/local.md) quote.
		{20000, Budget{FileLimit: 20000, Reserve: 2128, Connections: 4468, Requests: 4468, Held: 2234, HeldPerRevision: 1117}},
		{1024, Budget{FileLimit: 1024, Reserve: 230, Connections: 198, Requests: 198, Held: 99, HeldPerRevision: 49}},
		{400, Budget{FileLimit: 400, Reserve: 168, Connections: 58, Requests: 58, Held: 29, HeldPerRevision: 14}},
		// Below the reserve, requests still get a quarter of the limit.
		{128, Budget{FileLimit: 128, Reserve: 140, Connections: 8, Requests: 8, Held: 4, HeldPerRevision: 2}},
		{1, Budget{FileLimit: 1, Reserve: 128, Connections: 1, Requests: 1, Held: 1, HeldPerRevision: 1}},
		{0, Budget{FileLimit: 1, Reserve: 128, Connections: 1, Requests: 1, Held: 1, HeldPerRevision: 1}},
		// Unlimited counts as 2^20.
		{math.MaxInt, BudgetFor(1 << 20)},
	} {
		if got := BudgetFor(tc.limit); got != tc.want {
			t.Errorf("BudgetFor(%d) = %+v, want %+v", tc.limit, got, tc.want)
		}
	}
}

// Whatever the limit, what the budget lets the gateway and the activator
// open (see Budget) fits in the limit with the reserve aside, headroom
// included, as soon as the limit can hold the reserve at all.
func TestBudgetFitsTheLimit(t *testing.T) {
	for limit := 1; limit <= 1<<20; limit = limit*3/2 + 1 {
		b := BudgetFor(limit)
		used := b.Connections + b.Requests + 2*b.Held
		if usable := b.FileLimit - b.Reserve; usable > 0 && used > usable*3/4 {
			t.Errorf("limit %d: the ceilings use %d descriptors, over three quarters of the %d the reserve leaves", limit, used, usable)
		}
		if b.HeldPerRevision > b.Held || b.HeldPerRevision < 1 {
			t.Errorf("limit %d: per revision %d, total %d", limit, b.HeldPerRevision, b.Held)
		}
	}
}

func TestFileLimit(t *testing.T) {
	got, err := FileLimit()
	if err != nil {
		t.Skipf("no file limit here: %v", err)
	}
	if got < 1 {
		t.Errorf("FileLimit() = %d", got)
	}
	if b := DefaultBudget(); b != BudgetFor(got) {
		t.Errorf("DefaultBudget() = %v, want the budget of the limit %d: %v", b, got, BudgetFor(got))
	}
}
