package v1

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kgate/kgate/api/config"
)

func TestServiceSetDefaults(t *testing.T) {
	tests := []struct {
		name     string
		defaults map[string]string // config-defaults data
		in       *Service
		want     string // spec after defaulting, as JSON
	}{{
		name: "hello world: timeout, concurrency, container name, readiness probe, 100% latest",
		in: &Service{ObjectMeta: metav1.ObjectMeta{Name: "hello"}, Spec: ServiceSpec{ConfigurationSpec: ConfigurationSpec{
			Template: RevisionTemplateSpec{Spec: RevisionSpec{PodSpec: corev1.PodSpec{Containers: []corev1.Container{{Image: "img"}}}}}}}},
		want: `{"template":{"metadata":{},"spec":{"containers":[{"name":"user-container","image":"img","resources":{},` +
			`"readinessProbe":{"tcpSocket":{"port":0},"successThreshold":1}}],"containerConcurrency":0,"timeoutSeconds":300}},` +
			`"traffic":[{"latestRevision":true,"percent":100}]}`,
	}, {
		name: "given values stay; targets get latestRevision and percent",
		in: &Service{ObjectMeta: metav1.ObjectMeta{Name: "hello"}, Spec: ServiceSpec{
			ConfigurationSpec: ConfigurationSpec{Template: RevisionTemplateSpec{Spec: RevisionSpec{
				PodSpec:              corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "img", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
				ContainerConcurrency: ptr[int64](10), TimeoutSeconds: ptr[int64](60)}}},
			RouteSpec: RouteSpec{Traffic: []TrafficTarget{{Tag: "current", RevisionName: "hello-00001"}, {Percent: ptr[int64](100)}}}}},
		want: `{"template":{"metadata":{},"spec":{"containers":[{"name":"app","image":"img","ports":[{"containerPort":8080}],"resources":{},` +
			`"readinessProbe":{"tcpSocket":{"port":0},"successThreshold":1}}],"containerConcurrency":10,"timeoutSeconds":60}},` +
			`"traffic":[{"tag":"current","revisionName":"hello-00001","latestRevision":false,"percent":0},{"latestRevision":true,"percent":100}]}`,
	}, {
		name:     "cluster defaults: name template, shorter timeouts, resources; sidecars numbered",
		defaults: map[string]string{"container-name-template": "{{.Name}}", "revision-timeout-seconds": "100", "revision-response-start-timeout-seconds": "10", "revision-idle-timeout-seconds": "20", "revision-cpu-request": "100m"},
		in: &Service{ObjectMeta: metav1.ObjectMeta{Name: "hello"}, Spec: ServiceSpec{ConfigurationSpec: ConfigurationSpec{
			Template: RevisionTemplateSpec{Spec: RevisionSpec{PodSpec: corev1.PodSpec{Containers: []corev1.Container{
				{Image: "img", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}, {Image: "side"}}}}}}}},
		want: `{"template":{"metadata":{},"spec":{"containers":[` +
			`{"name":"hello-0","image":"img","ports":[{"containerPort":8080}],"resources":{"requests":{"cpu":"100m"}},"readinessProbe":{"tcpSocket":{"port":0},"successThreshold":1}},` +
			`{"name":"hello-1","image":"side","resources":{"requests":{"cpu":"100m"}}}],` +
			`"containerConcurrency":0,"timeoutSeconds":100,"responseStartTimeoutSeconds":10,"idleTimeoutSeconds":20}},` +
			`"traffic":[{"latestRevision":true,"percent":100}]}`,
	}, {
		name: "timeoutSeconds 0 means the default; probe thresholds filled in",
		in: &Service{ObjectMeta: metav1.ObjectMeta{Name: "hello"}, Spec: ServiceSpec{ConfigurationSpec: ConfigurationSpec{
			Template: RevisionTemplateSpec{Spec: RevisionSpec{TimeoutSeconds: ptr[int64](0), PodSpec: corev1.PodSpec{Containers: []corev1.Container{{
				Image: "img", ReadinessProbe: &corev1.Probe{PeriodSeconds: 5, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz"}}}}}}}}}}},
		want: `{"template":{"metadata":{},"spec":{"containers":[{"name":"user-container","image":"img","resources":{},` +
			`"readinessProbe":{"httpGet":{"path":"/healthz","port":0},"timeoutSeconds":1,"periodSeconds":5,"successThreshold":1,"failureThreshold":3}}],` +
			`"containerConcurrency":0,"timeoutSeconds":300}},"traffic":[{"latestRevision":true,"percent":100}]}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := config.ParseDefaults(tt.defaults)
			if err != nil {
				t.Fatal(err)
			}
			tt.in.SetDefaults(d)
			if tt.in.Namespace != "default" {
				t.Errorf("namespace = %q, want default", tt.in.Namespace)
			}
			got, err := json.Marshal(tt.in.Spec)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("spec:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestRouteSetDefaultsAddsNoTraffic(t *testing.T) {
	r := &Route{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "ns"}}
	r.SetDefaults(config.DefaultDefaults())
	if len(r.Spec.Traffic) != 0 || r.Namespace != "ns" {
		t.Errorf("Route after defaults: %+v", r)
	}
}

func TestRevisionSetDefaultsMountsReadOnly(t *testing.T) {
	r := &Revision{Spec: RevisionSpec{PodSpec: corev1.PodSpec{
		Volumes: []corev1.Volume{
			{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
			{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: resource.NewQuantity(1, resource.BinarySI)}}},
		},
		Containers: []corev1.Container{{Image: "img", VolumeMounts: []corev1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}, {Name: "tmp", MountPath: "/tmp"}}}},
	}}}
	r.SetDefaults(config.DefaultDefaults())
	m := r.Spec.Containers[0].VolumeMounts
	if !m[0].ReadOnly || m[1].ReadOnly {
		t.Errorf("mounts = %+v; want the ConfigMap read-only and the emptyDir writable", m)
	}
}
