package config

import (
	"testing"
	"time"
)

func TestParseGC(t *testing.T) {
	tests := []parseCase[GC]{
		{name: "empty is Knative's defaults: 48h, 15h, 20, 1000", data: nil, want: func(*GC) {}},
		{name: "the example key is not configuration", data: map[string]string{ExampleKey: "min-non-active-revisions: x"}, want: func(*GC) {}},
		{name: "every key set",
			data: map[string]string{"retain-since-create-time": "1h", "retain-since-last-active-time": "30m", "min-non-active-revisions": "2", "max-non-active-revisions": "5"},
			want: func(g *GC) {
				g.RetainSinceCreateTime, g.RetainSinceLastActiveTime = time.Hour, 30*time.Minute
				g.MinNonActiveRevisions, g.MaxNonActiveRevisions = 2, 5
			}},
		{name: "retain-since-create-time disabled", data: map[string]string{"retain-since-create-time": "disabled"},
			want: func(g *GC) { g.RetainSinceCreateTime = GCDisabled }},
		{name: "retain-since-last-active-time disabled, any case", data: map[string]string{"retain-since-last-active-time": "Disabled"},
			want: func(g *GC) { g.RetainSinceLastActiveTime = GCDisabled }},
		{name: "max-non-active-revisions disabled lifts the bound on min", data: map[string]string{"max-non-active-revisions": "DISABLED", "min-non-active-revisions": "5000"},
			want: func(g *GC) { g.MaxNonActiveRevisions, g.MinNonActiveRevisions = GCDisabled, 5000 }},
		{name: "an empty value keeps the default", data: map[string]string{"retain-since-create-time": "", "max-non-active-revisions": ""},
			want: func(*GC) {}},
		{name: "zero retain times and counts", data: map[string]string{"retain-since-create-time": "0s", "retain-since-last-active-time": "0", "min-non-active-revisions": "0", "max-non-active-revisions": "0"},
			want: func(g *GC) {
				g.RetainSinceCreateTime, g.RetainSinceLastActiveTime, g.MinNonActiveRevisions, g.MaxNonActiveRevisions = 0, 0, 0, 0
			}},
		{name: "min equal to max", data: map[string]string{"min-non-active-revisions": "7", "max-non-active-revisions": "7"},
			want: func(g *GC) { g.MinNonActiveRevisions, g.MaxNonActiveRevisions = 7, 7 }},
		{name: "min above max", data: map[string]string{"min-non-active-revisions": "8", "max-non-active-revisions": "7"},
			err: "config-gc: min-non-active-revisions: 8 must be <= max-non-active-revisions (7)"},
		{name: "min above the default max", data: map[string]string{"min-non-active-revisions": "1001"},
			err: "config-gc: min-non-active-revisions: 1001 must be <= max-non-active-revisions (1000)"},
		{name: "negative min", data: map[string]string{"min-non-active-revisions": "-1"},
			err: "config-gc: min-non-active-revisions: must be non-negative, was: -1"},
		{name: "min takes no disabled", data: map[string]string{"min-non-active-revisions": "disabled"},
			err: `config-gc: min-non-active-revisions: "disabled" is not an integer`},
		{name: "negative max", data: map[string]string{"max-non-active-revisions": "-1"},
			err: `config-gc: max-non-active-revisions: "-1" is not a non-negative integer or disabled`},
		{name: "max not a number", data: map[string]string{"max-non-active-revisions": "many"},
			err: `config-gc: max-non-active-revisions: "many" is not a non-negative integer or disabled`},
		{name: "negative retain time", data: map[string]string{"retain-since-create-time": "-1h"},
			err: "config-gc: retain-since-create-time: must be non-negative, was: -1h0m0s"},
		{name: "retain time not a duration", data: map[string]string{"retain-since-last-active-time": "15"},
			err: `config-gc: retain-since-last-active-time: "15" is not a duration (such as 48h) or disabled`},
	}
	runParseCases(t, tests, ParseGC, DefaultGC, nil)
}

func TestGCOff(t *testing.T) {
	tests := []struct {
		name string
		data map[string]string
		off  bool
	}{
		{name: "defaults collect", off: false},
		{name: "both times disabled, max still bounds", data: map[string]string{"retain-since-create-time": "disabled", "retain-since-last-active-time": "disabled"}, off: false},
		{name: "max disabled, times still collect", data: map[string]string{"max-non-active-revisions": "disabled"}, off: false},
		{name: "all three disabled", data: map[string]string{"retain-since-create-time": "disabled", "retain-since-last-active-time": "disabled", "max-non-active-revisions": "disabled"}, off: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := ParseGC(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if g.Off() != tt.off {
				t.Errorf("Off() = %v, want %v", g.Off(), tt.off)
			}
		})
	}
}

func TestConfigSetGC(t *testing.T) {
	c := Default()
	if c.GC != DefaultGC() {
		t.Fatalf("Default().GC = %+v, want Knative's defaults", c.GC)
	}
	known, err := c.Set(GCConfigName, map[string]string{"max-non-active-revisions": "3", "min-non-active-revisions": "1"})
	if !known || err != nil || c.GC.MaxNonActiveRevisions != 3 || c.GC.MinNonActiveRevisions != 1 {
		t.Fatalf("Set(config-gc) = %v, %v; GC = %+v", known, err, c.GC)
	}
	// A ConfigMap that does not parse leaves the last good value.
	if _, err := c.Set(GCConfigName, map[string]string{"min-non-active-revisions": "1001"}); err == nil || c.GC.MaxNonActiveRevisions != 3 {
		t.Errorf("Set(config-gc, min above max) = %v; GC = %+v, want the last good value kept", err, c.GC)
	}
}
