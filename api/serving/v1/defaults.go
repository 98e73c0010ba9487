package v1

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kgate/kgate/api/config"
)

// DefaultNamespace is the namespace of an object that names none.
const DefaultNamespace = "default"

// SetDefaults fills in what Knative's defaulting webhook would: the
// template's defaults (see RevisionTemplateSpec.SetDefaults), traffic
// [{latestRevision: true, percent: 100}] when none is given, and each
// target's latestRevision and percent.
func (s *Service) SetDefaults(d config.Defaults) {
	defaultNamespace(&s.ObjectMeta)
	s.Spec.Template.SetDefaults(d, s.ObjectMeta)
	s.Spec.RouteSpec.setDefaults(true)
}

// SetDefaults fills in the template's defaults.
func (c *Configuration) SetDefaults(d config.Defaults) {
	defaultNamespace(&c.ObjectMeta)
	c.Spec.Template.SetDefaults(d, c.ObjectMeta)
}

// SetDefaults fills in each traffic target's latestRevision (true unless a
// revisionName is given) and percent (0). A Route has no default traffic:
// only a Service knows which Configuration "latest" means.
func (r *Route) SetDefaults(config.Defaults) {
	defaultNamespace(&r.ObjectMeta)
	r.Spec.setDefaults(false)
}

// SetDefaults fills in the Revision's spec defaults.
func (r *Revision) SetDefaults(d config.Defaults) {
	defaultNamespace(&r.ObjectMeta)
	r.Spec.SetDefaults(d, r.ObjectMeta)
}

// SetDefaults fills in the template's spec defaults; parent is the metadata
// of the Service or Configuration, which the container name template sees.
func (t *RevisionTemplateSpec) SetDefaults(d config.Defaults, parent metav1.ObjectMeta) {
	t.Spec.SetDefaults(d, parent)
}

func defaultNamespace(m *metav1.ObjectMeta) {
	if m.Namespace == "" {
		m.Namespace = DefaultNamespace
	}
}

func (rs *RouteSpec) setDefaults(inService bool) {
	if len(rs.Traffic) == 0 && inService {
		rs.Traffic = []TrafficTarget{{LatestRevision: ptr(true), Percent: ptr[int64](100)}}
	}
	for i := range rs.Traffic {
		tt := &rs.Traffic[i]
		if tt.LatestRevision == nil {
			tt.LatestRevision = ptr(tt.RevisionName == "")
		}
		if tt.Percent == nil {
			tt.Percent = ptr[int64](0)
		}
	}
}

// SetDefaults fills in Knative's RevisionSpec defaults: timeoutSeconds
// (revision-timeout-seconds, also when 0), idle and response-start timeouts
// when the cluster's are set and shorter than the timeout,
// containerConcurrency, container names from the name templates, default
// resources, a TCP readiness probe on the serving container, and read-only
// mounts for volumes that cannot be written. No port is added: the
// container's PORT defaults to 8080 at run time.
func (rs *RevisionSpec) SetDefaults(d config.Defaults, parent metav1.ObjectMeta) {
	if rs.TimeoutSeconds == nil || *rs.TimeoutSeconds == 0 {
		rs.TimeoutSeconds = ptr(d.RevisionTimeoutSeconds)
	}
	if rs.IdleTimeoutSeconds == nil && d.RevisionIdleTimeoutSeconds != 0 && d.RevisionIdleTimeoutSeconds < *rs.TimeoutSeconds {
		rs.IdleTimeoutSeconds = ptr(d.RevisionIdleTimeoutSeconds)
	}
	if rs.ResponseStartTimeoutSeconds == nil && d.RevisionResponseStartTimeoutSeconds != 0 && d.RevisionResponseStartTimeoutSeconds < *rs.TimeoutSeconds {
		rs.ResponseStartTimeoutSeconds = ptr(d.RevisionResponseStartTimeoutSeconds)
	}
	if rs.ContainerConcurrency == nil {
		rs.ContainerConcurrency = ptr(d.ContainerConcurrency)
	}
	if rs.EnableServiceLinks == nil && d.EnableServiceLinks != nil {
		rs.EnableServiceLinks = ptr(*d.EnableServiceLinks)
	}

	taken := map[string]bool{}
	for _, c := range rs.Containers {
		taken[c.Name] = true
	}
	for _, c := range rs.InitContainers {
		taken[c.Name] = true
	}
	nameContainers(rs.Containers, taken, d.UserContainerName(parent))
	nameContainers(rs.InitContainers, taken, d.InitContainerName(parent))

	writable := map[string]bool{}
	for _, v := range rs.Volumes {
		if v.EmptyDir != nil || v.PersistentVolumeClaim != nil || v.Ephemeral != nil {
			writable[v.Name] = true
		}
	}
	for i := range rs.Containers {
		c := &rs.Containers[i]
		defaultResources(c, d)
		// The serving container is the only one, or the one with a port.
		if len(rs.Containers) == 1 || len(c.Ports) != 0 {
			if c.ReadinessProbe == nil {
				c.ReadinessProbe = &corev1.Probe{}
			}
			h := &c.ReadinessProbe.ProbeHandler
			if h.TCPSocket == nil && h.HTTPGet == nil && h.Exec == nil && h.GRPC == nil {
				h.TCPSocket = &corev1.TCPSocketAction{}
			}
		}
		if p := c.ReadinessProbe; p != nil {
			if p.SuccessThreshold == 0 {
				p.SuccessThreshold = 1
			}
			if p.PeriodSeconds != 0 {
				if p.FailureThreshold == 0 {
					p.FailureThreshold = 3
				}
				if p.TimeoutSeconds == 0 {
					p.TimeoutSeconds = 1
				}
			}
		}
		for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
			if p != nil && p.GRPC != nil && p.GRPC.Service == nil {
				p.GRPC.Service = ptr("")
			}
		}
		for j := range c.VolumeMounts {
			if !writable[c.VolumeMounts[j].Name] {
				c.VolumeMounts[j].ReadOnly = true
			}
		}
	}
}

// nameContainers names unnamed containers: the template's name when there is
// one container and the name is free, else the name with -0, -1, ... as
// Knative does.
func nameContainers(cs []corev1.Container, taken map[string]bool, base string) {
	next := 0
	for i := range cs {
		if cs[i].Name != "" {
			continue
		}
		name := base
		if len(cs) > 1 || taken[name] {
			for {
				name = base + "-" + strconv.Itoa(next)
				next++
				if !taken[name] {
					break
				}
			}
		}
		cs[i].Name = name
		taken[name] = true
	}
}

func defaultResources(c *corev1.Container, d config.Defaults) {
	for _, r := range []struct {
		name           corev1.ResourceName
		request, limit *resource.Quantity
	}{
		{corev1.ResourceCPU, d.RevisionCPURequest, d.RevisionCPULimit},
		{corev1.ResourceMemory, d.RevisionMemoryRequest, d.RevisionMemoryLimit},
		{corev1.ResourceEphemeralStorage, d.RevisionEphemeralStorageRequest, d.RevisionEphemeralStorageLimit},
	} {
		if r.request != nil {
			if c.Resources.Requests == nil {
				c.Resources.Requests = corev1.ResourceList{}
			}
			if _, ok := c.Resources.Requests[r.name]; !ok {
				c.Resources.Requests[r.name] = r.request.DeepCopy()
			}
		}
		if r.limit != nil {
			if c.Resources.Limits == nil {
				c.Resources.Limits = corev1.ResourceList{}
			}
			if _, ok := c.Resources.Limits[r.name]; !ok {
				c.Resources.Limits[r.name] = r.limit.DeepCopy()
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }
