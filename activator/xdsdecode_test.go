package activator

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/kgate/kgate/translator"
	"github.com/kgate/kgate/translator/model"
)

// The activator reads back exactly what the translator writes.
func TestRevisionOfReadsTheTranslatorsCluster(t *testing.T) {
	for _, rev := range []model.Revision{
		{Namespace: "ns", Name: "r-00001", Protocol: model.H2C, Timeout: 45 * time.Second, ContainerConcurrency: 1},
		{Namespace: "ns", Name: "r-00002", Protocol: model.HTTP1},
		{Namespace: "ns", Name: "hello-00003", Protocol: model.HTTP1, Service: "hello", Configuration: "hello"},
		{Namespace: "ns", Name: "r-00004", Protocol: model.HTTP1, Timeout: 10 * time.Second, ResponseStartTimeout: 2 * time.Second, IdleTimeout: 5 * time.Second},
	} {
		c := translator.Revision(rev, translator.Options{}).Clusters[0]
		key, cfg, ok, err := revisionOf(c)
		want := RevisionConfig{ContainerConcurrency: int(rev.ContainerConcurrency), Protocol: rev.Protocol, Timeout: rev.Timeout,
			ResponseStartTimeout: rev.ResponseStartTimeout, IdleTimeout: rev.IdleTimeout,
			Service: rev.Service, Configuration: rev.Configuration}
		if err != nil || !ok || key != rev.Key() || cfg != want {
			t.Errorf("revisionOf(%s) = %q, %+v, %v, %v; want %q, %+v", c.GetName(), key, cfg, ok, err, rev.Key(), want)
		}
	}
}

func TestRevisionOfRejectsBadMetadata(t *testing.T) {
	c := translator.Revision(model.Revision{Namespace: "ns", Name: "r", Protocol: model.HTTP1}, translator.Options{}).Clusters[0]
	fields := c.GetMetadata().GetFilterMetadata()[translator.MetadataNamespace].GetFields()
	for _, tc := range []struct {
		field string
		value *structpb.Value
		want  string
	}{
		{"revision", structpb.NewStringValue("no-namespace"), "not namespace/name"},
		{"containerConcurrency", structpb.NewNumberValue(-1), "containerConcurrency -1 is not a whole number"},
		{"containerConcurrency", structpb.NewNumberValue(1.5), "containerConcurrency 1.5 is not"},
		{"timeoutSeconds", structpb.NewStringValue("30"), "timeoutSeconds 30 is not"},
		{"responseStartTimeoutSeconds", structpb.NewNumberValue(-2), "responseStartTimeoutSeconds -2 is not"},
		{"idleTimeoutSeconds", structpb.NewNumberValue(0.5), "idleTimeoutSeconds 0.5 is not"},
	} {
		old, had := fields[tc.field]
		fields[tc.field] = tc.value
		if _, _, _, err := revisionOf(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s = %v: error %v, want %q", tc.field, tc.value.AsInterface(), err, tc.want)
		}
		if had {
			fields[tc.field] = old
		} else {
			delete(fields, tc.field)
		}
	}

	c.Metadata = nil
	if _, _, ok, err := revisionOf(c); ok || err != nil {
		t.Errorf("a cluster without revision metadata: ok %v, error %v; want neither", ok, err)
	}
}

func TestPodsOfSkipsEndpointsEnvoyWouldNotUse(t *testing.T) {
	cla := translator.Endpoints(model.RevisionEndpoints{Revision: "ns/r", Pods: []model.Endpoint{
		{Address: "10.0.0.1", Port: 8080}, {Address: "10.0.0.2", Port: 8080},
	}}, translator.Options{}).Endpoints[1]
	cla.GetEndpoints()[0].GetLbEndpoints()[1].HealthStatus = corev3.HealthStatus_DRAINING
	pods, err := podsOf(cla)
	if err != nil || !slices.Equal(pods, []model.Endpoint{{Address: "10.0.0.1", Port: 8080}}) {
		t.Errorf("podsOf = %v, %v; want 10.0.0.1:8080 alone", pods, err)
	}

	pipe := &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
		Address: &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/tmp/pod"}}},
	}}}
	cla.GetEndpoints()[0].LbEndpoints = append(cla.GetEndpoints()[0].LbEndpoints, pipe)
	if _, err := podsOf(cla); err == nil {
		t.Error("an endpoint without a socket address: no error")
	}
}
