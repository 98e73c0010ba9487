package knative

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/manifest"
	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
)

// Validate checks each object on its own, as Knative's admission webhook
// does when it is applied: defaults set, then validated against the
// ConfigMaps among objs (Knative's defaults for absent ones). What only
// reconciliation can tell — a traffic target naming a revision that does
// not exist yet, two files declaring one object — is not checked here: it
// shows in the objects' status once they are served. ceiling is the
// max-scale-limit where config-autoscaler sets none
// (config.Autoscaler.Bounded; 0 is Knative's: none).
func Validate(objs []manifest.Object, ceiling int32) []Problem {
	var problems []Problem
	settings := config.Default()
	for _, o := range objs {
		cm, ok := o.Obj.(*corev1.ConfigMap)
		if !ok {
			continue
		}
		_, err := settings.Set(cm.Name, cm.Data)
		if err != nil {
			problems = append(problems, problemAt(o, "data", err.Error()))
		}
	}
	v := servingv1.Validator{Defaults: settings.Defaults, Autoscaler: settings.Autoscaler.Bounded(ceiling)}
	for _, o := range objs {
		var errs field.ErrorList
		switch obj := o.Obj.(type) {
		case *servingv1.Service:
			obj = clone(obj)
			obj.SetDefaults(settings.Defaults)
			errs = v.Service(obj)
		case *servingv1.Configuration:
			obj = clone(obj)
			obj.SetDefaults(settings.Defaults)
			errs = v.Configuration(obj)
		case *servingv1.Route:
			obj = clone(obj)
			obj.SetDefaults(settings.Defaults)
			errs = v.Route(obj)
		case *v1beta1.DomainMapping:
			obj = clone(obj)
			obj.SetDefaults(settings.Defaults)
			errs = v1beta1.ValidateDomainMapping(obj)
		}
		problems = append(problems, fieldProblems(o, errs)...)
	}
	return problems
}
