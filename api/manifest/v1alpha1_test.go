package manifest

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/fielderr"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
)

// v1Service is the Service a v1alpha1 one converts to.
func v1Service(name string, container corev1.Container, traffic ...servingv1.TrafficTarget) *servingv1.Service {
	return &servingv1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: servingv1.APIVersion, Kind: servingv1.KindService},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: servingv1.ServiceSpec{
			ConfigurationSpec: servingv1.ConfigurationSpec{Template: servingv1.RevisionTemplateSpec{
				Spec: servingv1.RevisionSpec{PodSpec: corev1.PodSpec{Containers: []corev1.Container{container}}},
			}},
			RouteSpec: servingv1.RouteSpec{Traffic: traffic},
		},
	}
}

// TestV1alpha1Seeds decodes seed 003's v1alpha1 Services, verbatim from the
// tutorial, into the v1 Services Knative's conversion makes of them.
func TestV1alpha1Seeds(t *testing.T) {
	latest100 := servingv1.TrafficTarget{LatestRevision: ptr(true), Percent: ptr[int64](100)}
	tests := []struct {
		file    string
		want    *servingv1.Service
		warning string
	}{{
		file: "003-helloworld-csharp-v1alpha1.yaml",
		want: v1Service("helloworld-csharp", corev1.Container{
			Image: "docker.io/{username}/helloworld-csharp:v1",
			Env:   []corev1.EnvVar{{Name: "TARGET", Value: "C# Sample v1"}},
		}, latest100),
		warning: "serving.knative.dev/v1alpha1 is deprecated: converted to serving.knative.dev/v1 (spec.runLatest → spec.template + traffic [latestRevision 100%]; container → containers[0]); write serving.knative.dev/v1",
	}, {
		file: "003-helloworld-csharp-release-v1alpha1.yaml",
		want: v1Service("helloworld-csharp", corev1.Container{
			Image: "docker.io/{username}/helloworld-csharp:v1",
			Env:   []corev1.EnvVar{{Name: "TARGET", Value: "C# Sample v4"}},
		},
			servingv1.TrafficTarget{Tag: "current", RevisionName: "helloworld-csharp-00001", Percent: ptr[int64](80)},
			servingv1.TrafficTarget{Tag: "candidate", RevisionName: "helloworld-csharp-00004", Percent: ptr[int64](20)},
			servingv1.TrafficTarget{Tag: "latest", LatestRevision: ptr(true)}),
		warning: "serving.knative.dev/v1alpha1 is deprecated: converted to serving.knative.dev/v1 (spec.release → spec.template + traffic [current: helloworld-csharp-00001 80%, candidate: helloworld-csharp-00004 20%, latest: latestRevision 0%]; container → containers[0]); write serving.knative.dev/v1",
	}, {
		file:    "003-twilio-csharp-v1alpha1.yaml",
		want:    v1Service("twilio-csharp", corev1.Container{Image: "docker.io/{username}/twilio-csharp:v1"}, latest100),
		warning: "serving.knative.dev/v1alpha1 is deprecated: converted to serving.knative.dev/v1 (spec.runLatest → spec.template + traffic [latestRevision 100%]; container → containers[0]); write serving.knative.dev/v1",
	}}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			file := filepath.ToSlash(filepath.Join("testdata", "seeds", tt.file))
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			objs, errs := Decode(file, data)
			if len(errs) != 0 || len(objs) != 1 {
				t.Fatalf("Decode = %d objects, errors %q; want one object", len(objs), errs)
			}
			o := objs[0]
			if o.APIVersion != v1alpha1 || o.Kind != "Service" || o.Line != 1 || o.File != file {
				t.Errorf("object header = %s %s at %s:%d", o.APIVersion, o.Kind, o.File, o.Line)
			}
			if !reflect.DeepEqual(o.Warnings, []string{tt.warning}) {
				t.Errorf("warnings = %q\nwant       %q", o.Warnings, []string{tt.warning})
			}
			if !reflect.DeepEqual(o.Obj, tt.want) {
				got, _ := yaml.Marshal(o.Obj)
				want, _ := yaml.Marshal(tt.want)
				t.Fatalf("converted to\n%s\nwant\n%s", got, want)
			}
			// The conversion is a valid v1 Service. The image's "{username}"
			// passes because kgate checks only that an image is given;
			// Knative's webhook parses the reference and would reject it.
			svc := o.Obj.(*servingv1.Service)
			svc.SetDefaults(config.DefaultDefaults())
			if verrs := servingv1.ValidateService(svc); len(verrs) != 0 {
				t.Errorf("ValidateService: %s", fielderr.String(verrs))
			}
		})
	}
}

// alphaServiceYAML is a v1alpha1 Service manifest whose spec is the given
// lines, indented by two spaces; they start on line 6.
func alphaServiceYAML(spec ...string) string {
	return "apiVersion: serving.knative.dev/v1alpha1\nkind: Service\nmetadata:\n  name: s\nspec:\n  " +
		strings.ReplaceAll(strings.Join(spec, "\n"), "\n", "\n  ") + "\n"
}

// template is a revisionTemplate (or template) of one container, its key
// indented by indent (which the caller writes on the first line).
func template(key, indent string) string {
	return strings.Join([]string{
		key + ":",
		"  spec:",
		"    container:",
		"      image: x",
	}, "\n"+indent)
}

func TestV1alpha1Conversion(t *testing.T) {
	svc := func(traffic ...servingv1.TrafficTarget) *servingv1.Service {
		s := v1Service("s", corev1.Container{Image: "x"}, traffic...)
		s.Namespace = "default"
		return s
	}
	release := func(revisions string, rollout string) string {
		return alphaServiceYAML("release:",
			"  revisions: "+revisions,
			"  rolloutPercent: "+rollout,
			"  configuration:",
			"    "+template("revisionTemplate", "    "))
	}
	latestTag := servingv1.TrafficTarget{Tag: "latest", LatestRevision: ptr(true)}
	tests := []struct {
		name    string
		input   string
		want    any
		warning string
	}{{
		name:    "release with one revision: current takes all",
		input:   release("[s-00001]", "0"),
		want:    svc(servingv1.TrafficTarget{Tag: "current", RevisionName: "s-00001", Percent: ptr[int64](100)}, latestTag),
		warning: "serving.knative.dev/v1alpha1 is deprecated: converted to serving.knative.dev/v1 (spec.release → spec.template + traffic [current: s-00001 100%, latest: latestRevision 0%]; container → containers[0]); write serving.knative.dev/v1",
	}, {
		name:  "release to @latest",
		input: release("[s-00001, \"@latest\"]", "99"),
		want: svc(
			servingv1.TrafficTarget{Tag: "current", RevisionName: "s-00001", Percent: ptr[int64](1)},
			servingv1.TrafficTarget{Tag: "candidate", LatestRevision: ptr(true), Percent: ptr[int64](99)},
			latestTag),
		warning: "serving.knative.dev/v1alpha1 is deprecated: converted to serving.knative.dev/v1 (spec.release → spec.template + traffic [current: s-00001 1%, candidate: latestRevision 99%, latest: latestRevision 0%]; container → containers[0]); write serving.knative.dev/v1",
	}, {
		name:  "release with the template key of later v1alpha1",
		input: alphaServiceYAML("release:", "  revisions: [s-00001, s-00002]", "  configuration:", "    "+template("template", "    ")),
		want: svc(
			servingv1.TrafficTarget{Tag: "current", RevisionName: "s-00001", Percent: ptr[int64](100)},
			servingv1.TrafficTarget{Tag: "candidate", RevisionName: "s-00002", Percent: ptr[int64](0)},
			latestTag),
		warning: "serving.knative.dev/v1alpha1 is deprecated: converted to serving.knative.dev/v1 (spec.release → spec.template + traffic [current: s-00001 100%, candidate: s-00002 0%, latest: latestRevision 0%]; container → containers[0]); write serving.knative.dev/v1",
	}, {
		name:    "pinned",
		input:   alphaServiceYAML("pinned:", "  revisionName: s-00003", "  configuration:", "    "+template("revisionTemplate", "    ")),
		want:    svc(servingv1.TrafficTarget{RevisionName: "s-00003", Percent: ptr[int64](100)}),
		warning: "serving.knative.dev/v1alpha1 is deprecated: converted to serving.knative.dev/v1 (spec.pinned → spec.template + traffic [s-00003 100%]; container → containers[0]); write serving.knative.dev/v1",
	}, {
		name: "inline template and traffic, name becoming tag",
		input: alphaServiceYAML(template("template", "  "),
			"traffic:",
			"- name: v1",
			"  revisionName: s-00001",
			"  percent: 100"),
		want:    svc(servingv1.TrafficTarget{Tag: "v1", RevisionName: "s-00001", Percent: ptr[int64](100)}),
		warning: "serving.knative.dev/v1alpha1 is deprecated: converted to serving.knative.dev/v1 (spec.traffic.name → tag; container → containers[0]); write serving.knative.dev/v1",
	}, {
		name: "already the v1 shape",
		input: alphaServiceYAML("template:", "  spec:", "    containers:", "    - image: x",
			"traffic:", "- latestRevision: true", "  percent: 100"),
		want:    svc(servingv1.TrafficTarget{LatestRevision: ptr(true), Percent: ptr[int64](100)}),
		warning: "serving.knative.dev/v1alpha1 is deprecated: read as serving.knative.dev/v1, whose fields are the same here; change apiVersion to serving.knative.dev/v1",
	}, {
		name: "old revision spec fields",
		input: alphaServiceYAML("generation: 2", "runLatest:", "  configuration:", "    revisionTemplate:",
			"      metadata:",
			"        annotations:",
			"          autoscaling.knative.dev/target: \"10\"",
			"      spec:",
			"        generation: 1",
			"        servingState: Active",
			"        concurrencyModel: Single",
			"        timeoutSeconds: 60",
			"        container:",
			"          image: x"),
		want: func() *servingv1.Service {
			s := svc(servingv1.TrafficTarget{LatestRevision: ptr(true), Percent: ptr[int64](100)})
			s.Spec.Template.Annotations = map[string]string{"autoscaling.knative.dev/target": "10"}
			s.Spec.Template.Spec.ContainerConcurrency = ptr[int64](1)
			s.Spec.Template.Spec.TimeoutSeconds = ptr[int64](60)
			return s
		}(),
		warning: "serving.knative.dev/v1alpha1 is deprecated: converted to serving.knative.dev/v1 (spec.generation ignored; spec.runLatest → spec.template + traffic [latestRevision 100%]; container → containers[0]; concurrencyModel Single → containerConcurrency 1; spec.runLatest.configuration.revisionTemplate.spec.generation ignored; spec.runLatest.configuration.revisionTemplate.spec.servingState ignored); write serving.knative.dev/v1",
	}, {
		name: "Configuration",
		input: "apiVersion: serving.knative.dev/v1alpha1\nkind: Configuration\nmetadata:\n  name: s\nspec:\n  " +
			template("revisionTemplate", "  ") + "\n",
		want: &servingv1.Configuration{
			TypeMeta:   metav1.TypeMeta{APIVersion: servingv1.APIVersion, Kind: servingv1.KindConfiguration},
			ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default"},
			Spec:       svc().Spec.ConfigurationSpec,
		},
		warning: "serving.knative.dev/v1alpha1 is deprecated: converted to serving.knative.dev/v1 (spec.revisionTemplate → spec.template; container → containers[0]); write serving.knative.dev/v1",
	}, {
		name: "Route",
		input: "apiVersion: serving.knative.dev/v1alpha1\nkind: Route\nmetadata:\n  name: s\nspec:\n  traffic:\n" +
			"  - configurationName: s\n    percent: 100\n  - name: old\n    revisionName: s-00001\n    percent: 0\n",
		want: &servingv1.Route{
			TypeMeta:   metav1.TypeMeta{APIVersion: servingv1.APIVersion, Kind: servingv1.KindRoute},
			ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default"},
			Spec: servingv1.RouteSpec{Traffic: []servingv1.TrafficTarget{
				{ConfigurationName: "s", Percent: ptr[int64](100)},
				{Tag: "old", RevisionName: "s-00001", Percent: ptr[int64](0)},
			}},
		},
		warning: "serving.knative.dev/v1alpha1 is deprecated: converted to serving.knative.dev/v1 (spec.traffic.name → tag); write serving.knative.dev/v1",
	}, {
		name:  "Revision",
		input: "apiVersion: serving.knative.dev/v1alpha1\nkind: Revision\nmetadata:\n  name: s-00001\nspec:\n  container:\n    image: x\n",
		want: &servingv1.Revision{
			TypeMeta:   metav1.TypeMeta{APIVersion: servingv1.APIVersion, Kind: servingv1.KindRevision},
			ObjectMeta: metav1.ObjectMeta{Name: "s-00001", Namespace: "default"},
			Spec:       svc().Spec.Template.Spec,
		},
		warning: "serving.knative.dev/v1alpha1 is deprecated: converted to serving.knative.dev/v1 (container → containers[0]); write serving.knative.dev/v1",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, errs := Decode("f.yaml", []byte(tt.input))
			if len(errs) != 0 || len(objs) != 1 {
				t.Fatalf("Decode = %d objects, errors %q; want one object", len(objs), errs)
			}
			if !reflect.DeepEqual(objs[0].Warnings, []string{tt.warning}) {
				t.Errorf("warnings = %q\nwant       %q", objs[0].Warnings, []string{tt.warning})
			}
			if !reflect.DeepEqual(objs[0].Obj, tt.want) {
				got, _ := yaml.Marshal(objs[0].Obj)
				want, _ := yaml.Marshal(tt.want)
				t.Errorf("converted to\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestV1alpha1Errors checks that bad v1alpha1 input is an error naming the
// v1alpha1 field, at its line.
func TestV1alpha1Errors(t *testing.T) {
	seed, err := os.ReadFile(filepath.Join("testdata", "seeds", "003-helloworld-csharp-release-v1alpha1.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// edit changes the release seed.
	edit := func(old, new string) string {
		if !strings.Contains(string(seed), old) {
			t.Fatalf("the seed has no %q", old)
		}
		return strings.Replace(string(seed), old, new, 1)
	}
	runLatest := "runLatest:\n  configuration:\n    " + template("revisionTemplate", "    ")
	tests := []struct {
		name, input, err string
	}{{
		name:  "rolloutPercent 100",
		input: edit("rolloutPercent: 20", "rolloutPercent: 100"),
		err:   "f.yaml:12: expected 0 <= 100 <= 99: spec.release.rolloutPercent",
	}, {
		name:  "negative rolloutPercent",
		input: edit("rolloutPercent: 20", "rolloutPercent: -5"),
		err:   "f.yaml:12: expected 0 <= -5 <= 99: spec.release.rolloutPercent",
	}, {
		name:  "rolloutPercent not a number",
		input: edit("rolloutPercent: 20", "rolloutPercent: 20%"),
		err:   "f.yaml:12: cannot decode string into int: spec.release.rolloutPercent",
	}, {
		name:  "three revisions",
		input: edit(`"helloworld-csharp-00004"]`, `"helloworld-csharp-00004", "helloworld-csharp-00005"]`),
		err:   "f.yaml:11: expected 1 <= 3 <= 2: spec.release.revisions",
	}, {
		name:  "no revisions",
		input: edit(`revisions: ["helloworld-csharp-00001", "helloworld-csharp-00004"]`, "revisions: []"),
		err:   "f.yaml:11: invalid value: 20: spec.release.rolloutPercent; rolloutPercent is the candidate's share: it needs a second revision; missing field(s): spec.release.revisions",
	}, {
		name:  "a rolloutPercent without a candidate",
		input: edit(`, "helloworld-csharp-00004"]`, "]"),
		err:   "f.yaml:12: invalid value: 20: spec.release.rolloutPercent; rolloutPercent is the candidate's share: it needs a second revision",
	}, {
		name:  "a revision name that is not a DNS label",
		input: edit(`"helloworld-csharp-00004"`, `"HelloWorld_4"`),
		err:   `f.yaml:11: invalid value: not a DNS 1035 label: [a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')]: spec.release.revisions[1]`,
	}, {
		name:  "both runLatest and release",
		input: edit("spec:\n", "spec:\n  "+strings.ReplaceAll(runLatest, "\n", "\n  ")+"\n"),
		err:   "f.yaml:7: expected exactly one, got both: spec.release, spec.runLatest",
	}, {
		name:  "neither runLatest nor release",
		input: "apiVersion: serving.knative.dev/v1alpha1\nkind: Service\nmetadata:\n  name: s\nspec: {}\n",
		err:   "f.yaml:5: expected exactly one, got neither: spec.pinned, spec.release, spec.runLatest, spec.template",
	}, {
		name:  "no spec at all",
		input: "apiVersion: serving.knative.dev/v1alpha1\nkind: Service\nmetadata:\n  name: s\n",
		err:   "f.yaml:1: expected exactly one, got neither: spec.pinned, spec.release, spec.runLatest, spec.template",
	}, {
		name:  "a mode with traffic",
		input: alphaServiceYAML(strings.ReplaceAll(runLatest, "\n", "\n  "), "traffic:", "- percent: 100"),
		err:   "f.yaml:6: expected exactly one, got both: spec.runLatest, spec.traffic",
	}, {
		name:  "manual",
		input: alphaServiceYAML("manual: {}"),
		err:   "f.yaml:6: manual mode cannot be converted to serving.knative.dev/v1: spec.manual; declare a Configuration and a Route instead",
	}, {
		name:  "pinned without a revision",
		input: alphaServiceYAML("pinned:", "  configuration:", "    "+template("revisionTemplate", "    ")),
		err:   "f.yaml:6: missing field(s): spec.pinned.revisionName",
	}, {
		name:  "no revisionTemplate",
		input: edit("      revisionTemplate:", "      revisionTemplat:"),
		err:   "f.yaml:14: must not set the field(s): spec.release.configuration.revisionTemplat",
	}, {
		name:  "an empty configuration",
		input: alphaServiceYAML("runLatest:", "  configuration: {}"),
		err:   "f.yaml:7: expected exactly one, got neither: spec.runLatest.configuration.revisionTemplate, spec.runLatest.configuration.template",
	}, {
		name: "revisionTemplate and template",
		input: alphaServiceYAML("runLatest:", "  configuration:", "    "+template("revisionTemplate", "    "),
			"    "+template("template", "    ")),
		err: "f.yaml:8: expected exactly one, got both: spec.runLatest.configuration.revisionTemplate, spec.runLatest.configuration.template",
	}, {
		name:  "container and containers",
		input: edit("          container:\n", "          containers: [{image: z}]\n          container:\n"),
		err:   "f.yaml:16: expected exactly one, got both: spec.release.configuration.revisionTemplate.spec.container, spec.release.configuration.revisionTemplate.spec.containers",
	}, {
		name:  "no container",
		input: alphaServiceYAML("runLatest:", "  configuration:", "    revisionTemplate:", "      spec:", "        timeoutSeconds: 10"),
		err:   "f.yaml:9: expected exactly one, got neither: spec.runLatest.configuration.revisionTemplate.spec.container, spec.runLatest.configuration.revisionTemplate.spec.containers",
	}, {
		name:  "unknown fields in the container",
		input: edit("            env:", "            imagePolicy: Always\n            env:"),
		err:   "f.yaml:19: must not set the field(s): spec.release.configuration.revisionTemplate.spec.container.imagePolicy",
	}, {
		name:  "a build",
		input: edit("    configuration:\n", "    configuration:\n      build: {steps: []}\n"),
		err:   "f.yaml:14: Knative Build was removed and cannot be converted: spec.release.configuration.build; build the image beforehand and name it in the container's image",
	}, {
		name:  "a buildRef",
		input: edit("        spec:\n", "        spec:\n          buildRef: {name: b}\n"),
		err:   "f.yaml:16: Knative Build was removed and cannot be converted: spec.release.configuration.revisionTemplate.spec.buildRef; build the image beforehand and name it in the container's image",
	}, {
		name:  "a concurrencyModel at odds with containerConcurrency",
		input: edit("        spec:\n", "        spec:\n          concurrencyModel: Multi\n          containerConcurrency: 4\n"),
		err:   "f.yaml:16: expected exactly one, got both: spec.release.configuration.revisionTemplate.spec.concurrencyModel, spec.release.configuration.revisionTemplate.spec.containerConcurrency",
	}, {
		name:  "an unknown concurrencyModel",
		input: edit("        spec:\n", "        spec:\n          concurrencyModel: Many\n"),
		err:   "f.yaml:16: invalid value: Many: spec.release.configuration.revisionTemplate.spec.concurrencyModel; want Single or Multi",
	}, {
		name:  "a traffic target with name and tag",
		input: alphaServiceYAML(template("template", "  "), "traffic:", "- percent: 100", "- name: a", "  tag: b"),
		err:   "f.yaml:12: expected exactly one, got both: spec.traffic[1].name, spec.traffic[1].tag",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, errs := Decode("f.yaml", []byte(tt.input))
			if len(objs) != 0 || len(errs) != 1 || errs[0].Error() != tt.err {
				t.Fatalf("Decode = %d objects, errors %q;\nwant only error %q", len(objs), errs, tt.err)
			}
		})
	}
}
