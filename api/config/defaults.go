package config

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"text/template"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultsConfigName is the name of the ConfigMap Defaults is read from.
const DefaultsConfigName = "config-defaults"

// Defaults is config-defaults: the values a Revision gets when its spec
// leaves them out, and the limits its spec is validated against.
type Defaults struct {
	// RevisionTimeoutSeconds is the default spec.timeoutSeconds (300).
	RevisionTimeoutSeconds int64
	// MaxRevisionTimeoutSeconds is the largest timeoutSeconds allowed (600).
	MaxRevisionTimeoutSeconds int64
	// RevisionResponseStartTimeoutSeconds is the default
	// responseStartTimeoutSeconds; it defaults to RevisionTimeoutSeconds.
	RevisionResponseStartTimeoutSeconds int64
	// RevisionIdleTimeoutSeconds is the default idleTimeoutSeconds; 0 is none.
	RevisionIdleTimeoutSeconds int64
	// ContainerConcurrency is the default containerConcurrency; 0 is unlimited.
	ContainerConcurrency int64
	// ContainerConcurrencyMaxLimit is the largest containerConcurrency (1000).
	ContainerConcurrencyMaxLimit int64
	// AllowContainerConcurrencyZero allows containerConcurrency 0 (true).
	AllowContainerConcurrencyZero bool
	// ContainerNameTemplate names an unnamed user container
	// ("user-container"); it may use the parent's ObjectMeta, e.g. {{.Name}}.
	ContainerNameTemplate string
	// InitContainerNameTemplate names an unnamed init container ("init-container").
	InitContainerNameTemplate string
	// EnableServiceLinks is the default PodSpec enableServiceLinks; nil leaves it unset.
	EnableServiceLinks *bool

	// Default resource requests and limits for every container; nil is none.
	RevisionCPURequest, RevisionCPULimit                           *resource.Quantity
	RevisionMemoryRequest, RevisionMemoryLimit                     *resource.Quantity
	RevisionEphemeralStorageRequest, RevisionEphemeralStorageLimit *resource.Quantity

	containerName, initContainerName *template.Template
}

// DefaultDefaults returns Knative's config-defaults values.
func DefaultDefaults() Defaults {
	d := Defaults{
		RevisionTimeoutSeconds:              300,
		MaxRevisionTimeoutSeconds:           600,
		RevisionResponseStartTimeoutSeconds: 300,
		RevisionIdleTimeoutSeconds:          0,
		ContainerConcurrency:                0,
		ContainerConcurrencyMaxLimit:        1000,
		AllowContainerConcurrencyZero:       true,
		ContainerNameTemplate:               "user-container",
		InitContainerNameTemplate:           "init-container",
	}
	d.containerName = template.Must(boundedTemplate("container-name-template", d.ContainerNameTemplate))
	d.initContainerName = template.Must(boundedTemplate("init-container-name-template", d.InitContainerNameTemplate))
	return d
}

// ParseDefaults reads config-defaults data.
func ParseDefaults(data map[string]string) (Defaults, error) {
	return parseDefaults(&parser{configMap: DefaultsConfigName, data: data})
}

func parseDefaults(p *parser) (Defaults, error) {
	d := DefaultDefaults()
	p.string("container-name-template", &d.ContainerNameTemplate)
	p.string("init-container-name-template", &d.InitContainerNameTemplate)
	p.bool("allow-container-concurrency-zero", &d.AllowContainerConcurrencyZero)
	if v, ok := p.get("enable-service-links"); ok {
		switch v {
		case "true", "false":
			b := v == "true"
			d.EnableServiceLinks = &b
		case "default":
		default:
			p.fail("enable-service-links", "%q is not one of true, false, default", v)
		}
	}
	p.int64("revision-timeout-seconds", &d.RevisionTimeoutSeconds)
	p.int64("max-revision-timeout-seconds", &d.MaxRevisionTimeoutSeconds)
	p.int64("revision-idle-timeout-seconds", &d.RevisionIdleTimeoutSeconds)
	p.int64("container-concurrency", &d.ContainerConcurrency)
	p.int64("container-concurrency-max-limit", &d.ContainerConcurrencyMaxLimit)
	p.quantity("revision-cpu-request", &d.RevisionCPURequest)
	p.quantity("revision-cpu-limit", &d.RevisionCPULimit)
	p.quantity("revision-memory-request", &d.RevisionMemoryRequest)
	p.quantity("revision-memory-limit", &d.RevisionMemoryLimit)
	p.quantity("revision-ephemeral-storage-request", &d.RevisionEphemeralStorageRequest)
	p.quantity("revision-ephemeral-storage-limit", &d.RevisionEphemeralStorageLimit)
	// The response-start timeout follows the revision timeout unless set.
	d.RevisionResponseStartTimeoutSeconds = d.RevisionTimeoutSeconds
	p.int64("revision-response-start-timeout-seconds", &d.RevisionResponseStartTimeoutSeconds)
	if p.err != nil {
		return Defaults{}, p.err
	}

	switch {
	case d.RevisionTimeoutSeconds > d.MaxRevisionTimeoutSeconds:
		p.fail("revision-timeout-seconds", "%d cannot be greater than max-revision-timeout-seconds (%d)", d.RevisionTimeoutSeconds, d.MaxRevisionTimeoutSeconds)
	case d.RevisionResponseStartTimeoutSeconds > 0 && d.RevisionResponseStartTimeoutSeconds > d.RevisionTimeoutSeconds:
		p.fail("revision-response-start-timeout-seconds", "%d cannot be greater than revision-timeout-seconds (%d)", d.RevisionResponseStartTimeoutSeconds, d.RevisionTimeoutSeconds)
	case d.RevisionIdleTimeoutSeconds > 0 && d.RevisionIdleTimeoutSeconds > d.RevisionTimeoutSeconds:
		p.fail("revision-idle-timeout-seconds", "%d cannot be greater than revision-timeout-seconds (%d)", d.RevisionIdleTimeoutSeconds, d.RevisionTimeoutSeconds)
	case d.ContainerConcurrencyMaxLimit < 1:
		p.fail("container-concurrency-max-limit", "expected 1 <= %d <= %d", d.ContainerConcurrencyMaxLimit, math.MaxInt32)
	case d.ContainerConcurrency < 0 || d.ContainerConcurrency > d.ContainerConcurrencyMaxLimit:
		p.fail("container-concurrency", "expected 0 <= %d <= %d", d.ContainerConcurrency, d.ContainerConcurrencyMaxLimit)
	}
	var err error
	if d.containerName, err = nameTemplate("container-name-template", d.ContainerNameTemplate); err != nil {
		p.fail("container-name-template", "%v", err)
	}
	if d.initContainerName, err = nameTemplate("init-container-name-template", d.InitContainerNameTemplate); err != nil {
		p.fail("init-container-name-template", "%v", err)
	}
	if p.err != nil {
		return Defaults{}, p.err
	}
	return d, nil
}

// nameTemplate parses a container name template and runs it once on empty
// metadata, as Knative does, so a template that cannot run fails here.
func nameTemplate(name, text string) (*template.Template, error) {
	t, err := boundedTemplate(name, text)
	if err != nil {
		return nil, fmt.Errorf("parsing template: %w", err)
	}
	if err := t.Execute(io.Discard, metav1.ObjectMeta{}); err != nil {
		return nil, fmt.Errorf("executing template: %w", err)
	}
	return t, nil
}

// UserContainerName is the name an unnamed user container of the object
// described by parent gets.
func (d Defaults) UserContainerName(parent metav1.ObjectMeta) string {
	return render(d.containerName, d.ContainerNameTemplate, parent)
}

// InitContainerName is the name an unnamed init container gets.
func (d Defaults) InitContainerName(parent metav1.ObjectMeta) string {
	return render(d.initContainerName, d.InitContainerNameTemplate, parent)
}

// render runs t, parsing text when Defaults was built by hand rather than
// by DefaultDefaults or ParseDefaults. A template that fails yields "", as
// in Knative, and validation then reports the missing name.
func render(t *template.Template, text string, parent metav1.ObjectMeta) string {
	if t == nil {
		var err error
		if t, err = boundedTemplate("name", text); err != nil {
			return ""
		}
	}
	var b bytes.Buffer
	if err := t.Execute(&b, parent); err != nil {
		return ""
	}
	return b.String()
}
