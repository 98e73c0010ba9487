package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// parser reads typed values out of one ConfigMap's data, remembering the first
// error so that a Parse function reads as a list of keys.
//
// Every key is read through get, unconditionally (even after an error, and
// whatever other keys say): the keys a parser asks for are the keys kgate
// supports, and Unsupported reports the others (see keysRead). A key read
// any other way, or only sometimes, would be reported as unknown.
type parser struct {
	configMap string
	data      map[string]string
	err       error
	// read, when not nil, records every key get is asked for (keysRead).
	read map[string]bool
}

func (p *parser) fail(key, format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%s: %s: %s", p.configMap, key, fmt.Sprintf(format, args...))
	}
}

func (p *parser) get(key string) (string, bool) {
	if p.read != nil {
		p.read[key] = true
	}
	v, ok := p.data[key]
	return v, ok
}

// enabled reads Knative's "Enabled"/"Disabled" switches (any case; empty
// is Disabled).
func (p *parser) enabled(key string, dst *bool) {
	if v, ok := p.get(key); ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "enabled":
			*dst = true
		case "disabled", "":
			*dst = false
		default:
			p.fail(key, "%q is not Enabled or Disabled", v)
		}
	}
}

func (p *parser) int64(key string, dst *int64) {
	if v, ok := p.get(key); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			p.fail(key, "%q is not an integer", v)
			return
		}
		*dst = n
	}
}

func (p *parser) int32(key string, dst *int32) {
	if v, ok := p.get(key); ok {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			p.fail(key, "%q is not a 32-bit integer", v)
			return
		}
		*dst = int32(n)
	}
}

// float reads a finite number. ParseFloat also reads "NaN" and "Inf": NaN
// passes every bound check, since every comparison with it is false, and no
// rate, target or capacity is infinite.
func (p *parser) float(key string, dst *float64) {
	if v, ok := p.get(key); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			p.fail(key, "%q is not a number", v)
			return
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			p.fail(key, "%q is not a finite number", v)
			return
		}
		*dst = f
	}
}

func (p *parser) bool(key string, dst *bool) {
	if v, ok := p.get(key); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			p.fail(key, "%q is not a boolean (want true or false)", v)
			return
		}
		*dst = b
	}
}

func (p *parser) duration(key string, dst *time.Duration) {
	if v, ok := p.get(key); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			p.fail(key, "%q is not a duration (such as 30s or 1m)", v)
			return
		}
		*dst = d
	}
}

func (p *parser) string(key string, dst *string) {
	if v, ok := p.get(key); ok {
		*dst = v
	}
}

func (p *parser) quantity(key string, dst **resource.Quantity) {
	if v, ok := p.get(key); ok {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			p.fail(key, "%q is not a resource quantity: %v", v, err)
			return
		}
		*dst = &q
	}
}
