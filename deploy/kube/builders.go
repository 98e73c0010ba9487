package kube

import (
	"maps"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kgate/kgate/api/autoscaling"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// Defaults of Options and of revisions that leave things out; each is
// Knative's.
const (
	// DefaultInitialReplicas is config-autoscaler's initial-scale default.
	DefaultInitialReplicas int32 = 1
	// DefaultProgressDeadline is config-deployment's progress-deadline
	// default.
	DefaultProgressDeadline = 600 * time.Second
	// DefaultProbePeriodSeconds replaces a readiness probe's periodSeconds
	// of 0; see Options.ProbePeriodSeconds.
	DefaultProbePeriodSeconds int32 = 1
	// DefaultPort is the serving container's port when it declares none.
	DefaultPort int32 = 8080
	// DefaultTimeoutSeconds is the revision timeout (and so the pods'
	// termination grace period) of a revision that gives none;
	// config-defaults' revision-timeout-seconds default.
	DefaultTimeoutSeconds int64 = 300
)

// Port names.
const (
	// UserPortName is the serving container's port name in the pod, as
	// Knative names it.
	UserPortName = "user-port"
	// PortNameHTTP and PortNameH2C name the private Service's port, and so
	// the port of its EndpointSlices.
	PortNameHTTP = "http"
	PortNameH2C  = "h2c"
	// ServicePort is the private Service's port.
	ServicePort int32 = 80
)

// Options tune the builders. The zero value is Knative's defaults.
type Options struct {
	// InitialReplicas is the replicas of a Deployment when it is created;
	// the revision's autoscaling.knative.dev/initial-scale annotation
	// overrides it. nil is DefaultInitialReplicas. After creation the
	// autoscaler owns replicas: whoever updates the Deployment must keep
	// the replicas it has.
	InitialReplicas *int32
	// ProgressDeadline is how long a rollout may make no progress before
	// the Deployment reports it failed (and the revision is not ready);
	// the serving.knative.dev/progress-deadline annotation overrides it.
	// 0 is DefaultProgressDeadline.
	ProgressDeadline time.Duration
	// EnableServiceLinks is the pods' enableServiceLinks when the revision
	// does not set it (config-defaults' enable-service-links); nil is
	// false, Knative's default: a namespace with many Services would
	// otherwise give every pod thousands of variables.
	EnableServiceLinks *bool
	// ProbePeriodSeconds replaces a periodSeconds of 0 in the serving
	// container's readiness probe. Knative's queue-proxy reads 0 as "probe
	// every few milliseconds until ready", which a cold start needs; the
	// kubelet runs the probe in kgate and would read 0 as 10 s, so 0
	// becomes the kubelet's fastest instead. 0 is DefaultProbePeriodSeconds.
	ProbePeriodSeconds int32
}

func (o Options) initialReplicas() int32 {
	if o.InitialReplicas != nil {
		return *o.InitialReplicas
	}
	return DefaultInitialReplicas
}

func (o Options) probePeriodSeconds() int32 {
	if o.ProbePeriodSeconds > 0 {
		return o.ProbePeriodSeconds
	}
	return DefaultProbePeriodSeconds
}

// Labels and annotations the revision carries that stay off its children:
// they change as traffic moves (routing state, routes, pins), and a change
// to a Deployment's template labels or annotations would roll its pods.
var (
	excludedLabels = map[string]bool{
		"serving.knative.dev/route":        true,
		"serving.knative.dev/routingState": true,
	}
	excludedAnnotations = map[string]bool{
		"serving.knative.dev/lastPinned":           true,
		"serving.knative.dev/no-gc":                true,
		"serving.knative.dev/routingStateModified": true,
		"serving.knative.dev/routes":               true,
	}
)

// Labels are the labels of the revision's Deployment, pods and private
// Service: the revision's own (but those that follow routing), the
// revision's name and UID, and app: <revision> unless the revision sets app.
func Labels(rev *servingv1.Revision) map[string]string {
	l := make(map[string]string, len(rev.Labels)+3)
	for k, v := range rev.Labels {
		if !excludedLabels[k] {
			l[k] = v
		}
	}
	l[LabelRevision] = rev.Name
	l[LabelRevisionUID] = string(rev.UID)
	if _, ok := l[LabelApp]; !ok {
		l[LabelApp] = rev.Name
	}
	return l
}

// Selector selects the revision's pods: by UID, as Knative does.
func Selector(rev *servingv1.Revision) map[string]string {
	return map[string]string{LabelRevisionUID: string(rev.UID)}
}

// annotations are the revision's annotations for its Deployment and pods:
// without those that follow routing and without the autoscaling ones, which
// kgate's autoscaler reads from the revision and which would otherwise roll
// the pods when changed. nil when none are left.
func annotations(rev *servingv1.Revision) map[string]string {
	var a map[string]string
	for k, v := range rev.Annotations {
		if excludedAnnotations[k] || strings.HasPrefix(k, autoscaling.GroupName+"/") {
			continue
		}
		if a == nil {
			a = map[string]string{}
		}
		a[k] = v
	}
	return a
}

// OwnerReference makes the revision its child's controller, so that
// deleting the revision deletes the child and the child cannot outlive it.
func OwnerReference(rev *servingv1.Revision) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         servingv1.APIVersion,
		Kind:               servingv1.KindRevision,
		Name:               rev.Name,
		UID:                rev.UID,
		Controller:         new(true),
		BlockOwnerDeletion: new(true),
	}
}

// servingIndex is the index of the serving container: the only one, or the
// one with a port (validation allows one), else the first.
func servingIndex(cs []corev1.Container) int {
	if len(cs) > 1 {
		for i := range cs {
			if len(cs[i].Ports) != 0 {
				return i
			}
		}
	}
	return 0
}

// servingPort is the serving container's port (DefaultPort when it
// declares none) and the port's name.
func servingPort(rev *servingv1.Revision) (port int32, name string) {
	cs := rev.Spec.Containers
	if len(cs) == 0 || len(cs[servingIndex(cs)].Ports) == 0 {
		return DefaultPort, ""
	}
	p := cs[servingIndex(cs)].Ports[0]
	if p.ContainerPort == 0 {
		return DefaultPort, p.Name
	}
	return p.ContainerPort, p.Name
}

// IsH2C reports whether the revision's container speaks cleartext HTTP/2:
// its port is named h2c (or http2, which Knative also takes).
func IsH2C(rev *servingv1.Revision) bool {
	_, name := servingPort(rev)
	return name == "h2c" || name == "http2"
}

// Deployment is the revision's Deployment, "<revision>-deployment" in the
// revision's namespace, controlled by the revision. Its pods run the
// revision's containers under Knative's runtime contract; see the package
// doc for what kgate leaves out (the queue-proxy).
//
// Replicas is the initial scale (Options.InitialReplicas or the
// initial-scale annotation); the autoscaler sets it afterwards through the
// scale subresource, and nothing else touches it (a rolling update keeps
// spec.replicas). The strategy is a rolling update that never takes a
// ready pod away first (maxUnavailable 0): a revision's template changes
// only when what kgate builds does (an upgrade, other Options), and the
// revision must keep serving at its scale meanwhile. No
// ReplicaSet history is kept: a revision is immutable, there is nothing to
// roll back to.
func Deployment(rev *servingv1.Revision, opts Options) *appsv1.Deployment {
	labels := Labels(rev)
	replicas := opts.initialReplicas()
	// Validation has checked the annotations; Parse sets only valid values.
	if a, _ := autoscaling.Parse(rev.Annotations, nil); a.InitialScale != nil {
		replicas = *a.InitialScale
	}
	deadline := opts.ProgressDeadline
	if deadline <= 0 {
		deadline = DefaultProgressDeadline
	}
	if d, err := time.ParseDuration(rev.Annotations[AnnotationProgressDeadline]); err == nil && d > 0 {
		deadline = d
	}
	podAnnotations := annotations(rev)
	if cs := rev.Spec.Containers; len(cs) != 0 && cs[servingIndex(cs)].Name != "" {
		if podAnnotations == nil {
			podAnnotations = map[string]string{}
		}
		podAnnotations[AnnotationDefaultContainer] = cs[servingIndex(cs)].Name
	}
	maxUnavailable := intstr.FromInt32(0)
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            DeploymentName(rev.Name),
			Namespace:       rev.Namespace,
			Labels:          labels,
			Annotations:     annotations(rev),
			OwnerReferences: []metav1.OwnerReference{OwnerReference(rev)},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas:                new(replicas),
			Selector:                &metav1.LabelSelector{MatchLabels: Selector(rev)},
			ProgressDeadlineSeconds: new(int32(deadline / time.Second)),
			RevisionHistoryLimit:    new(int32(0)),
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(labels), Annotations: podAnnotations},
				Spec:       PodSpec(rev, opts),
			},
		},
	}
}

// PodSpec is the pod of the revision: its PodSpec (volumes, service
// account, image pull secrets, scheduling, security context) with the
// containers made to honour the runtime contract, the termination grace
// period set to the revision's timeout (a pod being stopped may finish its
// longest request) and enableServiceLinks defaulted.
func PodSpec(rev *servingv1.Revision, opts Options) corev1.PodSpec {
	pod := *rev.Spec.PodSpec.DeepCopy()
	timeout := DefaultTimeoutSeconds
	if t := rev.Spec.TimeoutSeconds; t != nil && *t > 0 {
		timeout = *t
	}
	pod.TerminationGracePeriodSeconds = new(timeout)
	if pod.EnableServiceLinks == nil {
		pod.EnableServiceLinks = new(opts.EnableServiceLinks != nil && *opts.EnableServiceLinks)
	}
	if len(pod.Containers) == 0 {
		return pod
	}
	port, _ := servingPort(rev)
	serving := servingIndex(pod.Containers)
	for i := range pod.Containers {
		c := &pod.Containers[i]
		if d := imageDigest(rev, c.Name); d != "" {
			c.Image = d
		}
		// The contract's container: no terminal, and logs as the
		// termination message when the container wrote none.
		c.Stdin, c.StdinOnce, c.TTY = false, false, false
		if c.TerminationMessagePolicy == "" {
			c.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
		}
		if i == serving {
			c.Ports = []corev1.ContainerPort{{Name: UserPortName, ContainerPort: port}}
			// After the user's env, so that it wins over a (rejected by
			// validation anyway) user PORT: the kubelet keeps the last.
			c.Env = append(c.Env, corev1.EnvVar{Name: "PORT", Value: strconv.Itoa(int(port))})
			servingProbes(c, port, opts.probePeriodSeconds())
		}
		c.Env = append(c.Env,
			corev1.EnvVar{Name: "K_REVISION", Value: rev.Name},
			corev1.EnvVar{Name: "K_CONFIGURATION", Value: rev.Labels[LabelConfiguration]},
			corev1.EnvVar{Name: "K_SERVICE", Value: rev.Labels[LabelService]},
		)
	}
	return pod
}

// imageDigest is the digest the revision resolved the container's image to,
// if it did: pods of one revision must all run the same code, whatever the
// tag points to later.
func imageDigest(rev *servingv1.Revision, container string) string {
	for _, s := range rev.Status.ContainerStatuses {
		if s.Name == container {
			return s.ImageDigest
		}
	}
	return ""
}

// servingProbes points the serving container's probes at its port. In
// Knative the queue-proxy runs the readiness probe; here the kubelet does,
// so the probe stays on the container and must name a port: a probe
// without one (or naming it) gets the container's port number, and a
// container without a readiness probe gets Knative's default, a TCP
// connection to the port. No liveness probe is added: the contract takes a
// listening port as live.
func servingProbes(c *corev1.Container, port int32, period int32) {
	if c.ReadinessProbe == nil {
		c.ReadinessProbe = &corev1.Probe{}
	}
	h := &c.ReadinessProbe.ProbeHandler
	if h.HTTPGet == nil && h.TCPSocket == nil && h.GRPC == nil && h.Exec == nil {
		h.TCPSocket = &corev1.TCPSocketAction{}
	}
	if c.ReadinessProbe.PeriodSeconds == 0 {
		c.ReadinessProbe.PeriodSeconds = period
	}
	for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
		if p == nil {
			continue
		}
		switch {
		case p.HTTPGet != nil && !isNumber(p.HTTPGet.Port):
			p.HTTPGet.Port = intstr.FromInt32(port)
		case p.TCPSocket != nil && !isNumber(p.TCPSocket.Port):
			p.TCPSocket.Port = intstr.FromInt32(port)
		case p.GRPC != nil && p.GRPC.Port == 0:
			p.GRPC.Port = port
		}
	}
}

// isNumber reports whether a probe names its port by number. 0 is left
// out; a name can only mean the one port of the serving container, whose
// name the pod does not keep (it is user-port, as in Knative).
func isNumber(p intstr.IntOrString) bool {
	return p.Type == intstr.Int && p.IntVal != 0
}

// PrivateService is the revision's private Service, "<revision>-private":
// a ClusterIP Service selecting the revision's pods, port 80 named http
// (h2c for an h2c container, with Kubernetes' h2c appProtocol) targeting
// the container's port. Nobody calls it; it exists for its EndpointSlices
// (label kubernetes.io/service-name=<revision>-private), which list the
// pods, ready or not, and which the controller feeds to the Scaler. Its
// labels are the revision's (Labels) and LabelServiceType: Private, which
// the EndpointSlice controller copies onto the slices.
func PrivateService(rev *servingv1.Revision) *corev1.Service {
	port, _ := servingPort(rev)
	labels := Labels(rev)
	labels[LabelServiceType] = ServiceTypePrivate
	sp := corev1.ServicePort{
		Name:       PortNameHTTP,
		Protocol:   corev1.ProtocolTCP,
		Port:       ServicePort,
		TargetPort: intstr.FromInt32(port),
	}
	if IsH2C(rev) {
		sp.Name = PortNameH2C
		sp.AppProtocol = new("kubernetes.io/h2c")
	}
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            PrivateServiceName(rev.Name),
			Namespace:       rev.Namespace,
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{OwnerReference(rev)},
		},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: Selector(rev),
			Ports:    []corev1.ServicePort{sp},
		},
	}
}
