package config

import (
	"math"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The ConfigMaps are read from files a user edits and, in a cluster, from
// the API server: each parser gets a fuzz target checking that nothing
// panics, that an error names its ConfigMap, and that what is accepted
// holds the bounds the types document — the autoscaler and the translator
// use these values without checking them again.
//
// Each target's input is a ConfigMap's data: entries separated by NUL
// bytes, each "key=value" (a value may hold newlines, as config-domain's
// selectors do, and "=").

// dataOf reads the fuzz targets' NUL-separated "key=value" entries.
func dataOf(s string) map[string]string {
	data := map[string]string{}
	for _, entry := range strings.Split(s, "\x00") {
		k, v, _ := strings.Cut(entry, "=")
		data[k] = v
	}
	return data
}

// checkError fails t unless err names the ConfigMap, as every parser's
// errors do ("CONFIGMAP: KEY: PROBLEM").
func checkError(t *testing.T, configMap string, err error) {
	t.Helper()
	if !strings.HasPrefix(err.Error(), configMap+": ") {
		t.Errorf("error %q does not name %s", err, configMap)
	}
}

// FuzzParseAutoscaler checks config-autoscaler: an accepted configuration
// has every value within the bounds Autoscaler documents and Knative
// enforces, and every number finite.
func FuzzParseAutoscaler(f *testing.F) {
	f.Fuzz(func(t *testing.T, text string) {
		data := dataOf(text)
		a, err := ParseAutoscaler(data)
		if err != nil {
			checkError(t, AutoscalerConfigName, err)
			if !reflect.DeepEqual(a, Autoscaler{}) {
				t.Errorf("ParseAutoscaler returned %+v with its error", a)
			}
			return
		}
		for _, c := range []struct {
			ok   bool
			rule string
		}{
			{a.PodAutoscalerClass == ClassKPA || a.PodAutoscalerClass == ClassHPA, "pod-autoscaler-class is the KPA or the HPA"},
			{a.MaxScaleUpRate > 1, "max-scale-up-rate > 1"},
			{a.MaxScaleDownRate > 1, "max-scale-down-rate > 1"},
			{a.TargetUtilization > 0 && a.TargetUtilization <= 1, "container-concurrency-target-percentage in (0, 100%]"},
			{a.TargetUtilization*a.ContainerConcurrencyTargetDefault >= TargetMin, "the default concurrency target >= 0.01"},
			{a.RPSTargetDefault >= TargetMin, "requests-per-second-target-default >= 0.01"},
			{a.TargetBurstCapacity >= 0 || a.TargetBurstCapacity == -1, "target-burst-capacity >= 0 or -1"},
			{a.PanicWindowPercentage >= PanicWindowPercentageMin && a.PanicWindowPercentage <= PanicWindowPercentageMax, "panic-window-percentage in 1..100"},
			{a.ActivatorCapacity >= 1, "activator-capacity >= 1"},
			{a.InitialScale >= 1 || a.InitialScale == 0 && a.AllowZeroInitialScale, "initial-scale >= 1, or 0 when allowed"},
			{a.MinScale >= 0, "min-scale >= 0"},
			{a.MaxScaleLimit >= 0, "max-scale-limit >= 0"},
			{a.MaxScale >= 0 && (a.MaxScaleLimit == 0 || a.MaxScale >= 1 && a.MaxScale <= a.MaxScaleLimit), "max-scale in [1, max-scale-limit] under a limit"},
			{a.MaxScale == 0 || a.MinScale <= a.MaxScale, "min-scale <= max-scale"},
			{a.StableWindow >= WindowMin && a.StableWindow <= WindowMax && a.StableWindow%time.Second == 0, "stable-window in 6s..1h, whole seconds"},
			{a.ScaleDownDelay >= 0 && a.ScaleDownDelay%time.Second == 0, "scale-down-delay >= 0, whole seconds"},
			{a.ScaleToZeroGracePeriod > 0, "scale-to-zero-grace-period > 0"},
			{a.ScaleToZeroPodRetentionPeriod >= 0, "scale-to-zero-pod-retention-period >= 0"},
		} {
			if !c.ok {
				t.Errorf("accepted %+v, breaking %s", a, c.rule)
			}
		}
		for _, v := range []float64{a.MaxScaleUpRate, a.MaxScaleDownRate, a.TargetUtilization, a.ContainerConcurrencyTargetDefault,
			a.RPSTargetDefault, a.TargetBurstCapacity, a.PanicWindowPercentage, a.PanicThresholdPercentage, a.ActivatorCapacity} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Errorf("accepted %+v, with a number that is not finite", a)
				break
			}
		}
	})
}

// FuzzParseDefaults checks config-defaults: accepted timeouts and
// concurrency within their limits, and name templates that name any
// object without panicking.
func FuzzParseDefaults(f *testing.F) {
	f.Fuzz(func(t *testing.T, text string) {
		data := dataOf(text)
		d, err := ParseDefaults(data)
		if err != nil {
			checkError(t, DefaultsConfigName, err)
			return
		}
		for _, c := range []struct {
			ok   bool
			rule string
		}{
			{d.RevisionTimeoutSeconds <= d.MaxRevisionTimeoutSeconds, "revision-timeout-seconds <= max-revision-timeout-seconds"},
			{d.RevisionResponseStartTimeoutSeconds <= 0 || d.RevisionResponseStartTimeoutSeconds <= d.RevisionTimeoutSeconds, "the response-start timeout <= revision-timeout-seconds"},
			{d.RevisionIdleTimeoutSeconds <= 0 || d.RevisionIdleTimeoutSeconds <= d.RevisionTimeoutSeconds, "the idle timeout <= revision-timeout-seconds"},
			{d.ContainerConcurrencyMaxLimit >= 1, "container-concurrency-max-limit >= 1"},
			{d.ContainerConcurrency >= 0 && d.ContainerConcurrency <= d.ContainerConcurrencyMaxLimit, "container-concurrency in 0..container-concurrency-max-limit"},
			{(d.EnableServiceLinks != nil) == (data["enable-service-links"] == "true" || data["enable-service-links"] == "false"), "enable-service-links set exactly when given as true or false"},
		} {
			if !c.ok {
				t.Errorf("accepted %+v, breaking %s", d, c.rule)
			}
		}
		// The templates ran on empty metadata when parsed; they must also
		// run on what objects carry, failing to "" at worst.
		for _, parent := range []metav1.ObjectMeta{
			{},
			{Name: "hello", Namespace: "default", Labels: map[string]string{"app": "hello"}, Annotations: map[string]string{"a": "b"}},
		} {
			d.UserContainerName(parent)
			d.InitContainerName(parent)
		}
	})
}

// FuzzParseDomain checks config-domain: every accepted domain is a DNS
// subdomain, and For always finds a domain whose selector matches, the
// most specific one, ties going to the smaller name whatever the map's
// order.
func FuzzParseDomain(f *testing.F) {
	f.Fuzz(func(t *testing.T, text string) {
		data := dataOf(text)
		d, err := ParseDomain(data)
		if err != nil {
			checkError(t, DomainConfigName, err)
			return
		}
		names := make([]string, 0, len(d.Domains))
		for name := range d.Domains {
			if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
				t.Errorf("accepted domain %q: %v", name, msgs)
			}
			names = append(names, name)
		}
		sort.Strings(names)
		// Each selector is a label set a Route may carry; so are none and
		// all of them at once.
		all := map[string]string{}
		labelSets := []map[string]string{nil, all}
		for _, name := range names {
			labelSets = append(labelSets, d.Domains[name])
			for k, v := range d.Domains[name] {
				all[k] = v
			}
		}
		for _, labels := range labelSets {
			want, best := "", -1
			for _, name := range names {
				if sel := d.Domains[name]; matches(sel, labels) && len(sel) > best {
					want, best = name, len(sel)
				}
			}
			if labels[VisibilityLabel] == VisibilityClusterLocal {
				want = ClusterLocalDomain
			}
			if got := d.For(labels); got != want || got == "" {
				t.Errorf("For(%v) = %q; want %q (domains %v)", labels, got, want, d.Domains)
			}
		}
	})
}

// FuzzParseNetwork checks config-network: accepted templates make a host
// name with no path from the sample values they were checked on, and
// render any Route's values without panicking.
func FuzzParseNetwork(f *testing.F) {
	f.Fuzz(func(t *testing.T, text string) {
		data := dataOf(text)
		n, err := ParseNetwork(data)
		if err != nil {
			checkError(t, NetworkConfigName, err)
			return
		}
		host, err := n.Host(DomainTemplateValues{Name: "foo", Namespace: "bar", Domain: "baz.com"})
		if err != nil {
			t.Fatalf("the domain template %q failed on the values it was checked on: %v", n.DomainTemplate, err)
		}
		if u, err := url.Parse("https://" + host); err != nil || u.Hostname() == "" || u.RequestURI() != "/" {
			t.Errorf("the domain template %q made %q, not a host name", n.DomainTemplate, host)
		}
		v := DomainTemplateValues{Name: "hello", Namespace: "default", Domain: "example.com",
			Labels: map[string]string{"app": "hello"}, Annotations: map[string]string{"a": "b"}}
		n.Host(v)
		n.TagHost("blue", v)
	})
}

func FuzzParseGC(f *testing.F) {
	for _, seed := range []string{
		"",
		"retain-since-create-time=48h\x00retain-since-last-active-time=15h\x00min-non-active-revisions=20\x00max-non-active-revisions=1000",
		"retain-since-create-time=Disabled\x00max-non-active-revisions=disabled",
		"min-non-active-revisions=5\x00max-non-active-revisions=2",
		"retain-since-create-time=-1s",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		g, err := ParseGC(dataOf(text))
		if err != nil {
			checkError(t, GCConfigName, err)
			return
		}
		// The collector takes these as they are: a retain time is
		// disabled or not negative, min is a count no larger than a
		// bounded max.
		for _, d := range []time.Duration{g.RetainSinceCreateTime, g.RetainSinceLastActiveTime} {
			if d < 0 && d != GCDisabled {
				t.Errorf("accepted a negative retain time %v", d)
			}
		}
		if g.MinNonActiveRevisions < 0 {
			t.Errorf("accepted min-non-active-revisions %d", g.MinNonActiveRevisions)
		}
		if g.MaxNonActiveRevisions != GCDisabled && (g.MaxNonActiveRevisions < 0 || g.MinNonActiveRevisions > g.MaxNonActiveRevisions) {
			t.Errorf("accepted max-non-active-revisions %d with min %d", g.MaxNonActiveRevisions, g.MinNonActiveRevisions)
		}
	})
}
