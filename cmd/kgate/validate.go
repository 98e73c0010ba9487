package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/kgate/kgate/api/config"
	"github.com/kgate/kgate/api/manifest"
	"github.com/kgate/kgate/watcher/knative"
)

func newValidateCommand() *cobra.Command {
	ceiling := config.LocalMaxScaleLimit(runtime.NumCPU())
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check Knative manifests as Knative's admission webhook would",
		Long: `Decodes every document of the files (YAML or JSON, several per file) and checks
each Service, Configuration and Route with Knative's rules, against the ConfigMaps
config-defaults and config-autoscaler found among the files (Knative's defaults
otherwise); those ConfigMaps and config-domain and config-network are checked too.
Each problem is printed on its own line as

  FILE:LINE: Kind namespace/name: field: message

and the exit status is 1 when there is any. A ConfigMap key kgate ignores (unknown,
or Knative's and not supported by kgate) is a warning line, which does not fail:

  FILE:LINE: ConfigMap namespace/name: data[key]: warning: unknown ConfigMap key; ignored (did you mean ...?)

References between objects (a traffic
target naming a revision that does not exist yet) are not problems here: they show
in the Route's status once served, as in Knative.

Where config-autoscaler sets no max-scale-limit, kgate local's applies
(--max-scale-limit: four replicas per CPU, at least 8): a min-scale or max-scale
above it is a problem. --max-scale-limit 0 checks as Knative does (no limit).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			problems, warnings, err := validateFiles(args, ceiling)
			if err != nil {
				return err
			}
			for _, w := range warnings {
				fmt.Fprintln(cmd.OutOrStdout(), w)
			}
			for _, p := range problems {
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			if len(problems) > 0 {
				return fmt.Errorf("%d problem(s) in %d file(s)", len(problems), len(args))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d file(s) valid\n", len(args))
			return nil
		},
	}
	cmd.Flags().Int32Var(&ceiling, "max-scale-limit", ceiling, "max-scale-limit where config-autoscaler sets none (kgate local's); 0 is Knative's: none")
	return cmd
}

// validateFiles decodes and checks the files; an unreadable file is an
// error, a bad document a problem, a ConfigMap key kgate ignores a warning.
func validateFiles(paths []string, ceiling int32) (problems, warnings []string, err error) {
	var objs []manifest.Object
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", p, err)
		}
		decoded, errs := manifest.Decode(p, data)
		for _, err := range errs {
			problems = append(problems, err.Error())
		}
		objs = append(objs, decoded...)
	}
	for _, p := range knative.Validate(objs, ceiling) {
		problems = append(problems, p.String())
	}
	for _, u := range knative.Unsupported(objs) {
		msg := u.Message()
		switch {
		case u.Why != "":
			msg += " (" + u.Why + ")"
		case u.Suggest != "":
			msg += " (did you mean " + u.Suggest + "?)"
		}
		warnings = append(warnings, fmt.Sprintf("%s:%d: ConfigMap %s/%s: data[%s]: warning: %s", u.File, u.Line, u.Namespace, u.ConfigMap, u.Key, msg))
	}
	return problems, warnings, nil
}
