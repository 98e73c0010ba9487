package translator

import (
	"fmt"
	"testing"
	"time"

	"github.com/kgate/kgate/translator/model"
)

// benchConfig is n Services, each with two revisions split 90/10, an
// external host and the three cluster-local names, and two ready pods per
// revision.
func benchConfig(n int) model.Config {
	var cfg model.Config
	created := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		ns, name := fmt.Sprintf("ns-%d", i%100), fmt.Sprintf("svc-%d", i)
		revs := []string{name + "-00001", name + "-00002"}
		route := model.Route{PathPrefix: "/", Timeout: 300 * time.Second, Splits: []model.Split{
			{Revision: ns + "/" + revs[1], Percent: 90, SetHeaders: []model.Header{{Name: "Knative-Serving-Revision", Value: revs[1]}, {Name: "Knative-Serving-Namespace", Value: ns}}},
			{Revision: ns + "/" + revs[0], Percent: 10, SetHeaders: []model.Header{{Name: "Knative-Serving-Revision", Value: revs[0]}, {Name: "Knative-Serving-Namespace", Value: ns}}},
		}}
		svc := model.Service{Namespace: ns, Name: name, Created: created.Add(time.Duration(i) * time.Second)}
		svc.VirtualHosts = append(svc.VirtualHosts, model.VirtualHost{Host: name + "." + ns + ".example.com", Visibility: model.External, Routes: []model.Route{route}})
		for _, h := range []string{name + "." + ns, name + "." + ns + ".svc", name + "." + ns + ".svc.cluster.local"} {
			svc.VirtualHosts = append(svc.VirtualHosts, model.VirtualHost{Host: h, Visibility: model.ClusterLocal, Routes: []model.Route{route}})
		}
		cfg.Services = append(cfg.Services, svc)
		for j, r := range revs {
			cfg.Revisions = append(cfg.Revisions, model.Revision{Namespace: ns, Name: r, Protocol: model.HTTP1, Timeout: 300 * time.Second})
			cfg.Endpoints = append(cfg.Endpoints, model.RevisionEndpoints{Revision: ns + "/" + r, Mode: model.Serve, Pods: []model.Endpoint{
				{Address: fmt.Sprintf("10.%d.%d.%d", i/65536%256, i/256%256, i%256), Port: uint32(8080 + j)},
				{Address: fmt.Sprintf("10.%d.%d.%d", 128+i/65536%128, i/256%256, i%256), Port: uint32(8080 + j)},
			}})
		}
	}
	return cfg
}

func BenchmarkTranslate(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		cfg := benchConfig(n)
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Translate(cfg, Options{LoadReporting: true})
			}
		})
	}
}

// BenchmarkService is the cost of one Service change in the xds engine: one
// Service's translation, whatever the number of other Services.
func BenchmarkService(b *testing.B) {
	svc := benchConfig(1).Services[0]
	b.ReportAllocs()
	for b.Loop() {
		Service(svc, Options{})
	}
}

// BenchmarkHostIndexSet is the conflict bookkeeping of one Service change
// with 10,000 Services indexed.
func BenchmarkHostIndexSet(b *testing.B) {
	cfg := benchConfig(10000)
	x := NewHostIndex()
	for _, s := range cfg.Services {
		x.Set(s)
	}
	svc := cfg.Services[5000]
	b.ReportAllocs()
	for b.Loop() {
		x.Set(svc)
	}
}
