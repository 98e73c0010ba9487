package lrs

import (
	"math"
	"testing"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
)

func TestLoadOf(t *testing.T) {
	locality := func(inFlight, issued uint64, endpoints ...*endpointv3.UpstreamEndpointStats) *endpointv3.UpstreamLocalityStats {
		return &endpointv3.UpstreamLocalityStats{
			TotalRequestsInProgress: inFlight,
			TotalIssuedRequests:     issued,
			UpstreamEndpointStats:   endpoints,
		}
	}
	endpoint := func(inFlight, issued uint64) *endpointv3.UpstreamEndpointStats {
		return &endpointv3.UpstreamEndpointStats{TotalRequestsInProgress: inFlight, TotalIssuedRequests: issued}
	}
	tests := []struct {
		name       string
		localities []*endpointv3.UpstreamLocalityStats
		want       load
		ok         bool
	}{
		{name: "no localities", ok: true},
		{name: "one locality", localities: []*endpointv3.UpstreamLocalityStats{locality(3, 7)}, want: load{3, 7}, ok: true},
		{
			name:       "localities add up",
			localities: []*endpointv3.UpstreamLocalityStats{locality(3, 7), locality(2, 1)},
			want:       load{5, 8}, ok: true,
		},
		{
			name:       "endpoints within their locality's totals",
			localities: []*endpointv3.UpstreamLocalityStats{locality(3, 7, endpoint(1, 3), endpoint(2, 4))},
			want:       load{3, 7}, ok: true,
		},
		{
			name:       "endpoints alone",
			localities: []*endpointv3.UpstreamLocalityStats{locality(0, 0, endpoint(1, 3), endpoint(2, 4))},
			want:       load{3, 7}, ok: true,
		},
		{
			name:       "in flight at the bound",
			localities: []*endpointv3.UpstreamLocalityStats{locality(maxCount, 0)},
			want:       load{maxCount, 0}, ok: true,
		},
		{name: "in flight past the bound", localities: []*endpointv3.UpstreamLocalityStats{locality(maxCount+1, 0)}},
		{name: "wrapped below zero", localities: []*endpointv3.UpstreamLocalityStats{locality(math.MaxUint64, 0)}},
		{name: "issued past the bound", localities: []*endpointv3.UpstreamLocalityStats{locality(0, math.MaxUint64)}},
		{
			name:       "sum past the bound",
			localities: []*endpointv3.UpstreamLocalityStats{locality(maxCount, 0), locality(1, 0)},
		},
		{
			name:       "endpoint past the bound",
			localities: []*endpointv3.UpstreamLocalityStats{locality(1, 1, endpoint(math.MaxUint64, 0))},
		},
		{
			name:       "endpoints sum past the bound",
			localities: []*endpointv3.UpstreamLocalityStats{locality(1, 1, endpoint(maxCount, 0), endpoint(maxCount, 0))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := loadOf(&endpointv3.ClusterStats{ClusterName: "ns/rev", UpstreamLocalityStats: tt.localities})
			if got != tt.want || ok != tt.ok {
				t.Errorf("loadOf = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
