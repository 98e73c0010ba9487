package xdsclient

import (
	"slices"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Load is what a caller counts for one cluster. The counts but InProgress
// are cumulative since the caller started counting: the reporter sends
// their growth since the cluster's last report. A count lower than at the
// last report means the caller started again from zero.
type Load struct {
	// InProgress counts the requests under way now.
	InProgress uint64
	// Issued counts the requests received.
	Issued uint64
	// Successful counts the requests completed without error.
	Successful uint64
	// Errors counts the requests completed with an error (a 5xx status).
	Errors uint64
}

// since returns the load l added to earlier, the cluster's last report.
func (l Load) since(earlier Load) Load {
	if l.Issued < earlier.Issued || l.Successful < earlier.Successful || l.Errors < earlier.Errors {
		earlier = Load{} // the caller's counts started again
	}
	return Load{
		InProgress: l.InProgress,
		Issued:     l.Issued - earlier.Issued,
		Successful: l.Successful - earlier.Successful,
		Errors:     l.Errors - earlier.Errors,
	}
}

// ledger remembers what was reported of each cluster, and when, so that
// each report carries what happened since the cluster's last one.
type ledger struct {
	locality *corev3.Locality
	last     map[string]reported
	// lastRound is when every cluster was last reported: the start of the
	// interval of a cluster reported for the first time.
	lastRound time.Time
}

type reported struct {
	load Load
	at   time.Time
}

func newLedger(locality *corev3.Locality, start time.Time) *ledger {
	return &ledger{locality: locality, last: map[string]reported{}, lastRound: start}
}

// report returns the stats of the clusters named, from their loads now,
// sorted by name, and records them as reported. A full round reports every
// cluster the server wants and forgets the clusters no longer counted.
func (l *ledger) report(now time.Time, loads map[string]Load, names []string, full bool) []*endpointv3.ClusterStats {
	slices.Sort(names)
	stats := make([]*endpointv3.ClusterStats, 0, len(names))
	for _, name := range names {
		cur := loads[name]
		prev, ok := l.last[name]
		if !ok {
			prev = reported{at: l.lastRound}
		}
		stats = append(stats, l.clusterStats(name, cur.since(prev.load), now.Sub(prev.at)))
		l.last[name] = reported{load: cur, at: now}
	}
	if full {
		l.lastRound = now
		for name := range l.last {
			if _, ok := loads[name]; !ok {
				delete(l.last, name)
			}
		}
	}
	return stats
}

// clusterStats puts a cluster's load in its one locality.
func (l *ledger) clusterStats(name string, d Load, interval time.Duration) *endpointv3.ClusterStats {
	return &endpointv3.ClusterStats{
		ClusterName: name,
		UpstreamLocalityStats: []*endpointv3.UpstreamLocalityStats{{
			Locality:                l.locality,
			TotalRequestsInProgress: d.InProgress,
			TotalIssuedRequests:     d.Issued,
			TotalSuccessfulRequests: d.Successful,
			TotalErrorRequests:      d.Errors,
		}},
		LoadReportInterval: durationpb.New(interval),
	}
}
