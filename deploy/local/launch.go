package local

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// Labels Knative puts on a revision, naming its Configuration and Service.
const (
	labelConfiguration = "serving.knative.dev/configuration"
	labelService       = "serving.knative.dev/service"
)

// defaultRevisionTimeout is Knative's default timeoutSeconds.
const defaultRevisionTimeout = 300 * time.Second

// DefaultTerminationGracePeriod is the time from SIGTERM to SIGKILL of a
// revision whose pod spec does not say: Kubernetes' default
// terminationGracePeriodSeconds.
const DefaultTerminationGracePeriod = 30 * time.Second

// launch is how a revision's replicas run: the same for each but for the
// port.
type launch struct {
	argv  []string // $(VAR) references are expanded per replica, PORT known
	env   []envVar // the container's, then K_REVISION, K_CONFIGURATION, K_SERVICE
	probe probe
	// timeout is the revision's timeoutSeconds, the longest a request
	// lasts: how long a replica scaled away waits for the requests in
	// flight to it before SIGTERM.
	timeout time.Duration
	grace   time.Duration // from SIGTERM to SIGKILL
}

type envVar struct{ name, value string }

// UnmappedImageError says that a container has no command and its image
// none that runs it locally.
type UnmappedImageError struct {
	Image string
}

// Error says how to give the image a command.
func (e *UnmappedImageError) Error() string {
	short := lastElement(e.Image)
	return fmt.Sprintf("image %q has no local command: map it with --image NAME=COMMAND "+
		"(NAME is the image with or without registry and tag, e.g. --image %s=./%s), "+
		"or give the container a command", e.Image, short, short)
}

// newLaunch reads how to run a revision locally. It runs the serving
// container only; the container's command and args when it has a command,
// else its image's command from resolve plus its args. maxGrace, unless 0,
// bounds the time from SIGTERM to SIGKILL.
func newLaunch(rev *servingv1.Revision, resolve func(image string) ([]string, bool), maxGrace time.Duration, log *slog.Logger) (*launch, error) {
	c, err := servingContainer(rev.Spec.Containers)
	if err != nil {
		return nil, err
	}
	if len(rev.Spec.Containers) > 1 {
		log.Warn("only the serving container runs locally; the others do not", "container", c.Name)
	}
	argv := c.Command
	if len(argv) == 0 {
		mapped, ok := resolve(c.Image)
		if !ok {
			return nil, fmt.Errorf("container %q: %w", c.Name, &UnmappedImageError{Image: c.Image})
		}
		argv = mapped
	}
	argv = append(append([]string(nil), argv...), c.Args...)
	env, err := containerEnv(c, rev)
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", c.Name, err)
	}
	// Fail now rather than crash-looping on a command that is not there.
	// The port is not known yet, so a $(PORT) in the command stays as it is.
	if _, err := exec.LookPath(expand(argv[0], lookupEnv(env))); err != nil {
		return nil, fmt.Errorf("container %q: %w", c.Name, err)
	}
	timeout := defaultRevisionTimeout
	if t := rev.Spec.TimeoutSeconds; t != nil && *t > 0 {
		timeout = time.Duration(*t) * time.Second
	}
	return &launch{
		argv:    argv,
		env:     env,
		probe:   newProbe(c.ReadinessProbe, log),
		timeout: timeout,
		grace:   gracePeriod(rev, maxGrace),
	}, nil
}

// gracePeriod is the time from SIGTERM to SIGKILL: the pod spec's
// terminationGracePeriodSeconds, or Kubernetes' default, bounded by
// maxGrace unless it is 0. It is for the app's own shutdown only: the
// requests in flight were waited for before SIGTERM. (Knative sets a
// pod's grace period to the revision's timeout because its queue-proxy
// drains within it; its validation refuses the field in a revision with
// the default feature flags, so the default is what most revisions get.)
func gracePeriod(rev *servingv1.Revision, maxGrace time.Duration) time.Duration {
	grace := DefaultTerminationGracePeriod
	if t := rev.Spec.TerminationGracePeriodSeconds; t != nil && *t >= 0 {
		grace = time.Duration(*t) * time.Second
	}
	if maxGrace > 0 {
		grace = min(grace, maxGrace)
	}
	return grace
}

// servingContainer is the container that serves: the only one, or the one
// with a port.
func servingContainer(cs []corev1.Container) (*corev1.Container, error) {
	if len(cs) == 1 {
		return &cs[0], nil
	}
	for i := range cs {
		if len(cs[i].Ports) > 0 {
			return &cs[i], nil
		}
	}
	if len(cs) == 0 {
		return nil, errors.New("the revision has no container")
	}
	return nil, errors.New("no container has a port: give the serving container one")
}

// containerEnv is the container's environment, each value's $(VAR)
// expanded from the variables before it, then the variables Knative adds.
// A variable from a ConfigMap, a Secret or a field has nothing to come
// from locally.
func containerEnv(c *corev1.Container, rev *servingv1.Revision) ([]envVar, error) {
	if len(c.EnvFrom) > 0 {
		return nil, errors.New("envFrom is not supported locally (no ConfigMaps or Secrets): give each variable a value")
	}
	env := make([]envVar, 0, len(c.Env)+3)
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			return nil, fmt.Errorf("env %s: valueFrom is not supported locally (no ConfigMaps, Secrets or fields): give it a value", e.Name)
		}
		env = append(env, envVar{e.Name, expand(e.Value, lookupEnv(env))})
	}
	return append(env,
		envVar{"K_REVISION", rev.Name},
		envVar{"K_CONFIGURATION", rev.Labels[labelConfiguration]},
		envVar{"K_SERVICE", rev.Labels[labelService]},
	), nil
}

// lookupEnv finds a variable in env, the last definition winning.
func lookupEnv(env []envVar) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for i := len(env) - 1; i >= 0; i-- {
			if env[i].name == name {
				return env[i].value, true
			}
		}
		return "", false
	}
}

// command is the argv and environment of a replica on port: kgate's own
// environment, as for any local process, then the container's and PORT.
func (l *launch) command(port int) (argv, environ []string) {
	env := append(append([]envVar(nil), l.env...), envVar{"PORT", strconv.Itoa(port)})
	lookup := lookupEnv(env)
	argv = make([]string, len(l.argv))
	for i, a := range l.argv {
		argv[i] = expand(a, lookup)
	}
	environ = os.Environ()
	for _, e := range env {
		environ = append(environ, e.name+"="+e.value)
	}
	return argv, environ
}
