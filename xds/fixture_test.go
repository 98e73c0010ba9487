package xds

import (
	"fmt"
	"time"

	"github.com/kgate/kgate/translator/model"
)

// t0 is when the first fixture Service was created.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// service is a Service in "default" created at t0+age with the given
// virtual hosts.
func service(name string, age time.Duration, hosts ...model.VirtualHost) model.Service {
	return model.Service{Namespace: "default", Name: name, Created: t0.Add(age), VirtualHosts: hosts}
}

// vhost routes everything under "/" of host to splits.
func vhost(host string, vis model.Visibility, splits ...model.Split) model.VirtualHost {
	return model.VirtualHost{Host: host, Visibility: vis, Routes: []model.Route{{PathPrefix: "/", Splits: splits}}}
}

func split(rev string, percent uint32) model.Split {
	return model.Split{Revision: rev, Percent: percent}
}

func revision(name string) model.Revision {
	return model.Revision{Namespace: "default", Name: name, Protocol: model.HTTP1}
}

func pod(port uint32) model.Endpoint { return model.Endpoint{Address: "127.0.0.1", Port: port} }

// activator is where Proxy mode sends traffic in the fixtures.
var activator = model.Endpoint{Address: "127.0.0.1", Port: 9000}

func endpoints(rev string, mode model.Mode, pods ...model.Endpoint) model.RevisionEndpoints {
	return model.RevisionEndpoints{Revision: rev, Mode: mode, Pods: pods, Activators: []model.Endpoint{activator}}
}

// fleet is n Services "svc-<i>" with host "svc-<i>.default.example.com",
// each splitting 90/10 between its revisions "svc-<i>-00001" and
// "svc-<i>-00002", each revision served by one pod.
func fleet(n int) model.Config {
	var cfg model.Config
	for i := range n {
		name := fmt.Sprintf("svc-%d", i)
		r1, r2 := name+"-00001", name+"-00002"
		cfg.Services = append(cfg.Services, service(name, time.Duration(i)*time.Second,
			vhost(name+".default.example.com", model.External, split("default/"+r1, 90), split("default/"+r2, 10))))
		cfg.Revisions = append(cfg.Revisions, revision(r1), revision(r2))
		cfg.Endpoints = append(cfg.Endpoints,
			endpoints("default/"+r1, model.Serve, pod(uint32(10000+2*i))),
			endpoints("default/"+r2, model.Serve, pod(uint32(10001+2*i))))
	}
	return cfg
}

// hello is the seeds' hello world: one Service, one revision, serving.
func hello() model.Config {
	return model.Config{
		Services: []model.Service{service("hello", 0,
			vhost("hello.default.example.com", model.External, split("default/hello-00001", 100)),
			vhost("hello.default.svc.cluster.local", model.ClusterLocal, split("default/hello-00001", 100)))},
		Revisions: []model.Revision{revision("hello-00001")},
		Endpoints: []model.RevisionEndpoints{endpoints("default/hello-00001", model.Serve, pod(8080))},
	}
}
