package config

import (
	"strconv"
	"strings"
	"time"
)

// GCConfigName is the name of the ConfigMap GC is read from.
const GCConfigName = "config-gc"

// GCDisabled is the value of a GC bound that config-gc sets to "disabled"
// (any case), as Knative's gc.Disabled.
const GCDisabled = -1

// GC is config-gc: when the revisions no Route sends traffic to are
// deleted. A revision is collected once it is older than both retain
// times, beyond the newest MinNonActiveRevisions of its Configuration; and
// whatever their age, no more than MaxNonActiveRevisions are kept.
type GC struct {
	// RetainSinceCreateTime is how long a revision is kept after it was
	// created (48h); GCDisabled ignores its age.
	RetainSinceCreateTime time.Duration
	// RetainSinceLastActiveTime is how long a revision is kept after a
	// Route last sent it traffic (15h); GCDisabled ignores when.
	RetainSinceLastActiveTime time.Duration
	// MinNonActiveRevisions is how many non-active revisions of each
	// Configuration are kept however old (20).
	MinNonActiveRevisions int64
	// MaxNonActiveRevisions is how many non-active revisions of each
	// Configuration are kept at most, however young (1000); GCDisabled is
	// no bound.
	MaxNonActiveRevisions int64
}

// DefaultGC returns Knative's config-gc values.
func DefaultGC() GC {
	return GC{
		RetainSinceCreateTime:     48 * time.Hour,
		RetainSinceLastActiveTime: 15 * time.Hour,
		MinNonActiveRevisions:     20,
		MaxNonActiveRevisions:     1000,
	}
}

// Off says whether nothing can be collected: both retain times and the
// maximum disabled, as Knative skips collection then.
func (g GC) Off() bool {
	return g.MaxNonActiveRevisions == GCDisabled && g.RetainSinceCreateTime == GCDisabled && g.RetainSinceLastActiveTime == GCDisabled
}

// ParseGC reads config-gc data. As in Knative, an empty retain time or
// maximum keeps its default, and min-non-active-revisions is a plain
// count: it takes no "disabled" (0 keeps none).
func ParseGC(data map[string]string) (GC, error) {
	return parseGC(&parser{configMap: GCConfigName, data: data})
}

func parseGC(p *parser) (GC, error) {
	g := DefaultGC()
	p.disabledOrDuration("retain-since-create-time", &g.RetainSinceCreateTime)
	p.disabledOrDuration("retain-since-last-active-time", &g.RetainSinceLastActiveTime)
	p.int64("min-non-active-revisions", &g.MinNonActiveRevisions)
	p.disabledOrCount("max-non-active-revisions", &g.MaxNonActiveRevisions)
	if p.err != nil {
		return GC{}, p.err
	}
	switch {
	case g.MinNonActiveRevisions < 0:
		p.fail("min-non-active-revisions", "must be non-negative, was: %d", g.MinNonActiveRevisions)
	case g.MaxNonActiveRevisions != GCDisabled && g.MinNonActiveRevisions > g.MaxNonActiveRevisions:
		p.fail("min-non-active-revisions", "%d must be <= max-non-active-revisions (%d)", g.MinNonActiveRevisions, g.MaxNonActiveRevisions)
	}
	if p.err != nil {
		return GC{}, p.err
	}
	return g, nil
}

// disabledOrDuration reads a non-negative duration or "disabled".
func (p *parser) disabledOrDuration(key string, dst *time.Duration) {
	v, ok := p.get(key)
	switch {
	case !ok || v == "":
	case strings.EqualFold(v, "disabled"):
		*dst = GCDisabled
	default:
		d, err := time.ParseDuration(v)
		if err != nil {
			p.fail(key, "%q is not a duration (such as 48h) or disabled", v)
			return
		}
		if d < 0 {
			p.fail(key, "must be non-negative, was: %v", d)
			return
		}
		*dst = d
	}
}

// disabledOrCount reads a non-negative integer or "disabled".
func (p *parser) disabledOrCount(key string, dst *int64) {
	v, ok := p.get(key)
	switch {
	case !ok || v == "":
	case strings.EqualFold(v, "disabled"):
		*dst = GCDisabled
	default:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			p.fail(key, "%q is not a non-negative integer or disabled", v)
			return
		}
		*dst = n
	}
}
