package v1

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/fielderr"
)

// service is a valid, defaulted Service that each case below breaks in one way.
func service(mutate func(*Service)) *Service {
	s := &Service{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: ServiceSpec{ConfigurationSpec: ConfigurationSpec{Template: RevisionTemplateSpec{
			Spec: RevisionSpec{PodSpec: corev1.PodSpec{Containers: []corev1.Container{{
				Image: "ghcr.io/knative/helloworld-go:latest",
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
				Env:   []corev1.EnvVar{{Name: "TARGET", Value: "World"}},
			}}}},
		}}},
	}
	if mutate != nil {
		mutate(s)
	}
	s.SetDefaults(config.DefaultDefaults())
	return s
}

func traffic(tts ...TrafficTarget) func(*Service) {
	return func(s *Service) { s.Spec.Traffic = tts }
}

func annotate(kv ...string) func(*Service) {
	return func(s *Service) {
		s.Spec.Template.Annotations = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			s.Spec.Template.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func container(f func(*corev1.Container)) func(*Service) {
	return func(s *Service) { f(&s.Spec.Template.Spec.Containers[0]) }
}

func TestValidateService(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Service)
		want   []string
	}{
		{name: "valid", want: nil},
		{name: "name too long", mutate: func(s *Service) { s.Name = "a123456789012345678901234567890123456789012345678901234567890123" },
			want: []string{"not a DNS 1035 label: [must be no more than 63 characters]: metadata.name"}},
		{name: "name not a DNS-1035 label", mutate: func(s *Service) { s.Name = "1hello" },
			want: []string{"not a DNS 1035 label: [a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')]: metadata.name"}},
		{name: "no name", mutate: func(s *Service) { s.Name = "" },
			want: []string{"name or generateName is required: metadata.name"}},
		{name: "autoscaling annotations on the Service itself", mutate: func(s *Service) {
			s.Annotations = map[string]string{"autoscaling.knative.dev/min-scale": "1"}
		}, want: []string{`invalid key name "autoscaling.knative.dev/min-scale": metadata.annotations` + "\n" +
			`autoscaling annotations must be put under "spec.template.metadata.annotations" to work`}},
		{name: "annotations over 256 KiB in total, as the API server refuses them", mutate: func(s *Service) {
			s.Annotations = map[string]string{"a": strings.Repeat("x", 128<<10), "b": strings.Repeat("y", 128<<10)}
		}, want: []string{"may not be more than 262144 bytes: metadata.annotations"}},
		{name: "annotations of exactly 256 KiB", mutate: func(s *Service) {
			s.Annotations = map[string]string{"a": strings.Repeat("x", 256<<10-1)}
		}},
		{name: "template annotations over 256 KiB", mutate: func(s *Service) {
			s.Spec.Template.Annotations = map[string]string{"note": strings.Repeat("x", 300<<10)}
		}, want: []string{"may not be more than 262144 bytes: spec.template.metadata.annotations"}},

		// Traffic.
		{name: "seed traffic: latest 50, pinned 50", mutate: traffic(
			TrafficTarget{LatestRevision: ptr(true), Percent: ptr[int64](50)},
			TrafficTarget{LatestRevision: ptr(false), Percent: ptr[int64](50), RevisionName: "hello-00001"})},
		{name: "percents must sum to 100", mutate: traffic(
			TrafficTarget{LatestRevision: ptr(true), Percent: ptr[int64](50)},
			TrafficTarget{RevisionName: "hello-00001", Percent: ptr[int64](40)}),
			want: []string{"Traffic targets sum to 90, want 100: spec.traffic"}},
		{name: "percent out of range", mutate: traffic(
			TrafficTarget{LatestRevision: ptr(true), Percent: ptr[int64](101)},
			TrafficTarget{RevisionName: "hello-00001", Percent: ptr[int64](-1)}),
			want: []string{"expected 0 <= -1 <= 100: spec.traffic[1].percent", "expected 0 <= 101 <= 100: spec.traffic[0].percent"}},
		{name: "revisionName with latestRevision true", mutate: traffic(
			TrafficTarget{RevisionName: "hello-00001", LatestRevision: ptr(true), Percent: ptr[int64](100)}),
			want: []string{`may not set revisionName "hello-00001" when latestRevision is true: spec.traffic[0].latestRevision`}},
		{name: "latestRevision false without revisionName", mutate: traffic(
			TrafficTarget{LatestRevision: ptr(false), Percent: ptr[int64](100)}),
			want: []string{`may not set revisionName "" when latestRevision is false: spec.traffic[0].latestRevision`}},
		{name: "configurationName in a Service", mutate: traffic(
			TrafficTarget{ConfigurationName: "other", Percent: ptr[int64](100)}),
			want: []string{"must not set the field(s): spec.traffic[0].configurationName"}},
		{name: "duplicate tags", mutate: traffic(
			TrafficTarget{Tag: "blue", Percent: ptr[int64](50)},
			TrafficTarget{Tag: "blue", RevisionName: "hello-00001", Percent: ptr[int64](50)}),
			want: []string{`Multiple definitions for "blue": spec.traffic[0].tag, spec.traffic[1].tag`}},
		{name: "tag not a DNS label", mutate: traffic(TrafficTarget{Tag: "Blue", Percent: ptr[int64](100)}),
			want: []string{"invalid value: not a DNS 1035 label: [a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')]: spec.traffic[0].tag"}},
		{name: "url in spec", mutate: traffic(TrafficTarget{Tag: "blue", Percent: ptr[int64](100), URL: &URL{Host: "x"}}),
			want: []string{"must not set the field(s): spec.traffic[0].url"}},

		// Template name.
		{name: "template name with the Service prefix", mutate: func(s *Service) { s.Spec.Template.Name = "hello-knative-v2" }},
		{name: "template name without the Service prefix", mutate: func(s *Service) { s.Spec.Template.Name = "knative-v2" },
			want: []string{`invalid value: "knative-v2" must have prefix "hello-": spec.template.metadata.name`}},

		// Containers.
		{name: "no containers", mutate: func(s *Service) { s.Spec.Template.Spec.Containers = nil },
			want: []string{"missing field(s): spec.template.spec.containers"}},
		{name: "no image", mutate: container(func(c *corev1.Container) { c.Image = "" }),
			want: []string{"missing field(s): spec.template.spec.containers[0].image"}},
		{name: "two ports", mutate: container(func(c *corev1.Container) {
			c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: 9000})
		}), want: []string{"more than one container port is set: spec.template.spec.containers[*].ports\nOnly a single port is allowed across all containers"}},
		{name: "reserved port", mutate: container(func(c *corev1.Container) { c.Ports[0].ContainerPort = 8012 }),
			want: []string{"invalid value: 8012 is a reserved port: spec.template.spec.containers[0].ports[0].containerPort\n8012 is a reserved port, please use a different value"}},
		{name: "port name h2c", mutate: container(func(c *corev1.Container) { c.Ports[0].Name = "h2c" })},
		{name: "port name http", mutate: container(func(c *corev1.Container) { c.Ports[0].Name = "http" }),
			want: []string{"Port name http is not allowed: spec.template.spec.containers[0].ports[0].name\nName must be empty, or one of: 'h2c', 'http1'"}},
		{name: "UDP port", mutate: container(func(c *corev1.Container) { c.Ports[0].Protocol = corev1.ProtocolUDP }),
			want: []string{"invalid value: UDP: spec.template.spec.containers[0].ports[0].protocol"}},
		{name: "hostPort", mutate: container(func(c *corev1.Container) { c.Ports[0].HostPort = 80 }),
			want: []string{"must not set the field(s): spec.template.spec.containers[0].ports[0].hostPort"}},
		{name: "reserved env", mutate: container(func(c *corev1.Container) {
			c.Env = append(c.Env, corev1.EnvVar{Name: "PORT", Value: "80"}, corev1.EnvVar{Name: "K_REVISION", Value: "x"})
		}), want: []string{
			`"K_REVISION" is a reserved environment variable: spec.template.spec.containers[0].env[2].name`,
			`"PORT" is a reserved environment variable: spec.template.spec.containers[0].env[1].name`}},
		{name: "reserved container name", mutate: container(func(c *corev1.Container) { c.Name = "queue-proxy" }),
			want: []string{`"queue-proxy" is a reserved container name: spec.template.spec.containers[0].name`}},
		{name: "disallowed container fields", mutate: container(func(c *corev1.Container) { c.TTY = true; c.Stdin = true }),
			want: []string{"must not set the field(s): spec.template.spec.containers[0].stdin, spec.template.spec.containers[0].tty"}},
		{name: "disallowed pod fields", mutate: func(s *Service) {
			s.Spec.Template.Spec.NodeName = "n1"
			s.Spec.Template.Spec.HostNetwork = true
		}, want: []string{"must not set the field(s): spec.template.spec.hostNetwork, spec.template.spec.nodeName"}},
		{name: "sidecar with the port elsewhere", mutate: func(s *Service) {
			s.Spec.Template.Spec.Containers = append(s.Spec.Template.Spec.Containers,
				corev1.Container{Image: "sidecar", Env: []corev1.EnvVar{{Name: "PORT", Value: "1"}}})
		}},
		{name: "two containers, no port", mutate: func(s *Service) {
			s.Spec.Template.Spec.Containers[0].Ports = nil
			s.Spec.Template.Spec.Containers = append(s.Spec.Template.Spec.Containers, corev1.Container{Image: "sidecar"})
		}, want: []string{"missing field(s): spec.template.spec.containers[*].ports"}},
		{name: "duplicate container names", mutate: func(s *Service) {
			s.Spec.Template.Spec.Containers[0].Name = "app"
			s.Spec.Template.Spec.Containers = append(s.Spec.Template.Spec.Containers, corev1.Container{Name: "app", Image: "sidecar"})
		}, want: []string{`duplicate container name "app": spec.template.spec.containers[1].name`}},
		{name: "mount without volume", mutate: container(func(c *corev1.Container) {
			c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/dev"}}
		}), want: []string{
			`mountPath "/dev" is a reserved path: spec.template.spec.containers[0].volumeMounts[0].mountPath`,
			"volumeMount has no matching volume: spec.template.spec.containers[0].volumeMounts[0].name"}},

		// Revision knobs.
		{name: "timeout above max-revision-timeout-seconds", mutate: func(s *Service) { s.Spec.Template.Spec.TimeoutSeconds = ptr[int64](601) },
			want: []string{"expected 0 <= 601 <= 600: spec.template.spec.timeoutSeconds"}},
		{name: "timeout at the max", mutate: func(s *Service) { s.Spec.Template.Spec.TimeoutSeconds = ptr[int64](600) }},
		{name: "response start timeout above max-revision-timeout-seconds", mutate: func(s *Service) { s.Spec.Template.Spec.ResponseStartTimeoutSeconds = ptr[int64](601) },
			want: []string{"expected 0 <= 601 <= 600: spec.template.spec.responseStartTimeoutSeconds"}},
		{name: "negative idle timeout", mutate: func(s *Service) { s.Spec.Template.Spec.IdleTimeoutSeconds = ptr[int64](-1) },
			want: []string{"expected 0 <= -1 <= 600: spec.template.spec.idleTimeoutSeconds"}},
		{name: "idle and response start timeouts at the max", mutate: func(s *Service) {
			s.Spec.Template.Spec.IdleTimeoutSeconds, s.Spec.Template.Spec.ResponseStartTimeoutSeconds = ptr[int64](600), ptr[int64](600)
		}},
		{name: "containerConcurrency above the limit", mutate: func(s *Service) { s.Spec.Template.Spec.ContainerConcurrency = ptr[int64](1001) },
			want: []string{"expected 0 <= 1001 <= 1000: spec.template.spec.containerConcurrency"}},
		{name: "negative containerConcurrency", mutate: func(s *Service) { s.Spec.Template.Spec.ContainerConcurrency = ptr[int64](-1) },
			want: []string{"expected 0 <= -1 <= 1000: spec.template.spec.containerConcurrency"}},

		// Autoscaling annotations are checked on the template.
		{name: "seed annotations", mutate: annotate(
			"autoscaling.knative.dev/target", "10",
			"autoscaling.knative.dev/class", "kpa.autoscaling.knative.dev",
			"autoscaling.knative.dev/target-utilization-percentage", "70",
			"autoscaling.knative.dev/metric", "concurrency")},
		{name: "target utilization above 100", mutate: annotate("autoscaling.knative.dev/target-utilization-percentage", "101"),
			want: []string{"expected 1 <= 101 <= 100: spec.template.metadata.annotations[autoscaling.knative.dev/target-utilization-percentage]"}},
		{name: "initial scale 0 needs the cluster's consent", mutate: annotate("autoscaling.knative.dev/initial-scale", "0"),
			want: []string{"invalid value: 0: spec.template.metadata.annotations[autoscaling.knative.dev/initial-scale]\ninitial-scale=0 not allowed by cluster"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fielderr.Messages(ValidateService(service(tt.mutate)))
			if len(got) == 0 {
				got = nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n%q\nwant:\n%q", got, tt.want)
			}
		})
	}
}

func TestValidateRoute(t *testing.T) {
	route := func(tts ...TrafficTarget) *Route {
		r := &Route{ObjectMeta: metav1.ObjectMeta{Name: "r"}, Spec: RouteSpec{Traffic: tts}}
		r.SetDefaults(config.DefaultDefaults())
		return r
	}
	tests := []struct {
		name  string
		route *Route
		want  []string
	}{
		{name: "configuration and revision targets",
			route: route(TrafficTarget{ConfigurationName: "c", Percent: ptr[int64](90)}, TrafficTarget{RevisionName: "c-00001", Percent: ptr[int64](10)})},
		{name: "no traffic sums to 0", route: route(),
			want: []string{"Traffic targets sum to 0, want 100: spec.traffic"}},
		{name: "neither name", route: route(TrafficTarget{Percent: ptr[int64](100)}),
			want: []string{"expected exactly one, got neither: spec.traffic[0].configurationName, spec.traffic[0].revisionName"}},
		{name: "both names", route: route(TrafficTarget{ConfigurationName: "c", RevisionName: "c-1", Percent: ptr[int64](100)}),
			want: []string{"expected exactly one, got both: spec.traffic[0].configurationName, spec.traffic[0].revisionName"}},
		{name: "percent left out counts as 0", route: route(TrafficTarget{ConfigurationName: "c"}),
			want: []string{"Traffic targets sum to 0, want 100: spec.traffic"}},
		{name: "bad revision name", route: route(TrafficTarget{RevisionName: "a/b/c", Percent: ptr[int64](100)}),
			want: []string{`invalid key name "a/b/c": spec.traffic[0].revisionName` + "\n" +
				"a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fielderr.Messages(ValidateRoute(tt.route))
			if len(got) == 0 {
				got = nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n%q\nwant:\n%q", got, tt.want)
			}
		})
	}
}

func TestValidateConfigurationAndRevision(t *testing.T) {
	spec := RevisionSpec{PodSpec: corev1.PodSpec{Containers: []corev1.Container{{Image: "x"}}}}
	c := &Configuration{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: ConfigurationSpec{Template: RevisionTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: copySpec(spec)}}}
	c.SetDefaults(config.DefaultDefaults())
	want := []string{`invalid value: "other" must have prefix "c-": spec.template.metadata.name`}
	if got := fielderr.Messages(ValidateConfiguration(c)); !reflect.DeepEqual(got, want) {
		t.Errorf("Configuration errors %q, want %q", got, want)
	}

	// A Revision carries its autoscaling annotations on its own metadata.
	r := &Revision{ObjectMeta: metav1.ObjectMeta{Name: "c-00001", Annotations: map[string]string{
		"autoscaling.knative.dev/minScale": "3", "autoscaling.knative.dev/maxScale": "2"}}, Spec: copySpec(spec)}
	r.SetDefaults(config.DefaultDefaults())
	want = []string{"max-scale=2 is less than min-scale=3: metadata.annotations[autoscaling.knative.dev/maxScale], metadata.annotations[autoscaling.knative.dev/minScale]"}
	if got := fielderr.Messages(ValidateRevision(r)); !reflect.DeepEqual(got, want) {
		t.Errorf("Revision errors %q, want %q", got, want)
	}
}

func TestValidatorUsesConfig(t *testing.T) {
	d, err := config.ParseDefaults(map[string]string{"max-revision-timeout-seconds": "900", "container-concurrency-max-limit": "50"})
	if err != nil {
		t.Fatal(err)
	}
	v := Validator{Defaults: d, Autoscaler: config.DefaultAutoscaler()}
	s := service(func(s *Service) {
		s.Spec.Template.Spec.TimeoutSeconds = ptr[int64](900)
		s.Spec.Template.Spec.ContainerConcurrency = ptr[int64](51)
	})
	want := []string{"expected 0 <= 51 <= 50: spec.template.spec.containerConcurrency"}
	if got := fielderr.Messages(v.Service(s)); !reflect.DeepEqual(got, want) {
		t.Errorf("errors %q, want %q", got, want)
	}
}

func TestRevisionTemplatePath(t *testing.T) {
	// ValidateRevisionTemplate reports under the path it is given.
	tmpl := &RevisionTemplateSpec{Spec: RevisionSpec{PodSpec: corev1.PodSpec{Containers: []corev1.Container{{}}}}}
	got := fielderr.Messages(ValidateRevisionTemplate(tmpl, metav1.ObjectMeta{Name: "p"}, field.NewPath("x")))
	want := []string{"missing field(s): x.spec.containers[0].image"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors %q, want %q", got, want)
	}
}

// copySpec copies the parts of a RevisionSpec these tests set.
func copySpec(s RevisionSpec) RevisionSpec {
	s.Containers = append([]corev1.Container(nil), s.Containers...)
	return s
}
