package inflight

import "fmt"

// Budget is what the dev gateway and the activator of one process may hold
// at once, derived from the process's file limit (RLIMIT_NOFILE) by
// BudgetFor. The costs it is built on, in file descriptors of the process:
//
//   - a client connection at the gateway: 1;
//   - a request the gateway proxies: 1 more, its upstream connection (to a
//     pod, or to the activator); idle upstream connections close after
//     the clusters' idle timeout (4 s as kgate configures them);
//   - a request the activator holds: 1 more, the server end of the
//     gateway's connection to it, and 1 more once proxied to a pod.
//
// So with U = FileLimit − Reserve, the budget gives a quarter of U to each
// of: client connections (Connections), upstream connections (Requests),
// and the activator's requests at 2 descriptors each (Held = U/8). The
// last quarter is headroom for idle pooled connections, which both ends
// of a gateway→activator connection hold, and for what the costs above
// leave out. Everything else the process opens — the admin API, xDS and
// LRS streams, the replicas' readiness probes, pipes and log files, the
// watched folder — lives in Reserve, a tenth of the limit plus 128.
//
// With the limit of the report in issue 12, 20,000: Reserve 2,128,
// Connections 4,468, Requests 4,468, Held 2,234, HeldPerRevision 1,117.
// With 1,024: Reserve 230, Connections 198, Requests 198, Held 99,
// HeldPerRevision 49. Linux distributions commonly give 524,288 or
// 1,048,576 (Go raises the soft limit to the hard one at start), where
// the activator's per-revision queue (10,000 deep) binds first.
type Budget struct {
	// FileLimit is the file limit the budget derives from.
	FileLimit int
	// Reserve is what is left to the rest of the process: FileLimit/10 +
	// 128.
	Reserve int
	// Connections bounds the client connections the gateway has open
	// across its listeners: U/4.
	Connections int
	// Requests bounds the requests the gateway proxies at once, each on an
	// upstream connection of its own when HTTP/1.1: U/4. An HTTP/2 client
	// multiplexes many on one connection, which Connections cannot bound.
	Requests int
	// Held bounds the requests the activator has at once across
	// revisions, waiting for a pod or proxied to one: U/8.
	Held int
	// HeldPerRevision bounds those of one revision: half of Held, so that
	// one busy revision leaves room to the others.
	HeldPerRevision int
}

// Reserve, as a fraction of the limit plus a constant: the fraction scales
// with what a bigger installation opens besides requests (more replicas,
// more probes), the constant covers a small one's fixed costs (standard
// streams, xDS, admin API, folder watches, a few replicas).
const (
	reserveDivisor  = 10
	reserveConstant = 128
)

// FallbackFileLimit is the limit DefaultBudget assumes when the process's
// cannot be read: Linux's usual soft limit before Go raises it.
const FallbackFileLimit = 1024

// maxFileLimit caps the limit budgets derive from: an unlimited
// (RLIM_INFINITY) or huge limit would give ceilings that memory, not
// descriptors, would bound first.
const maxFileLimit = 1 << 20

// BudgetFor returns the budget for a process whose file limit is
// fileLimit. A limit too small to leave Reserve aside still gets a quarter
// of itself for requests, and every ceiling is at least 1.
func BudgetFor(fileLimit int) Budget {
	fileLimit = min(max(fileLimit, 1), maxFileLimit)
	reserve := fileLimit/reserveDivisor + reserveConstant
	usable := max(fileLimit-reserve, fileLimit/4)
	held := max(usable/8, 1)
	return Budget{
		FileLimit:       fileLimit,
		Reserve:         reserve,
		Connections:     max(usable/4, 1),
		Requests:        max(usable/4, 1),
		Held:            held,
		HeldPerRevision: max(held/2, 1),
	}
}

// DefaultBudget returns the budget for the process's file limit now, or
// for FallbackFileLimit when it cannot be read.
func DefaultBudget() Budget {
	limit, err := FileLimit()
	if err != nil {
		return BudgetFor(FallbackFileLimit)
	}
	return BudgetFor(limit)
}

// String prints the budget as a log line or docs would quote it.
func (b Budget) String() string {
	return fmt.Sprintf("file limit %d: reserve %d, gateway connections %d, gateway requests %d, activator requests %d (%d per revision)",
		b.FileLimit, b.Reserve, b.Connections, b.Requests, b.Held, b.HeldPerRevision)
}
