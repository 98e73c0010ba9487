package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// watchObjects is get -w: the list as get prints it, then, every interval,
// the rows of the objects whose row changed (or that are new), until the
// command's context ends, as kubectl get -w prints them. In json or yaml,
// each changed object whole. A row's AGE alone changing is no change.
func watchObjects(cmd *cobra.Command, admin, path, resource, output string, single bool, interval time.Duration) error {
	w := cmd.OutOrStdout()
	seen := map[string]string{} // object key → what was printed of it
	var header []string         // printed once, with the first rows
	var widths []int
	for first := true; ; first = false {
		body, err := adminGet(cmd, admin, path)
		switch {
		case err != nil && cmd.Context().Err() != nil:
			return nil // interrupted
		case err != nil:
			return err
		}
		items, err := itemsOf(body, single)
		if err != nil {
			return err
		}
		if output == "table" {
			h, rows, keys, err := tableOf(resource, items, time.Now())
			if err != nil {
				return err
			}
			var changed [][]string
			for i, row := range rows {
				cmp := slices.Clone(row)
				if resource == "revisions" {
					cmp[ageColumn] = ""
				}
				if v := fmt.Sprint(cmp); seen[keys[i]] != v {
					seen[keys[i]] = v
					changed = append(changed, row)
				}
			}
			if header == nil && len(changed) > 0 {
				// The first rows set the columns' widths, which later
				// rows keep, so that they line up under the header.
				header = h
				widths = columnWidths(append([][]string{h}, changed...))
				changed = append([][]string{h}, changed...)
			}
			for _, row := range changed {
				fmt.Fprintln(w, padRow(row, widths))
			}
			if first && len(items) == 0 {
				fmt.Fprintf(w, "No %s found.\n", resource)
			}
		} else if err := writeChanged(w, output, items, seen); err != nil {
			return err
		}
		select {
		case <-cmd.Context().Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// writeChanged prints, in json or yaml, each object that is new or changed.
func writeChanged(w io.Writer, output string, items []json.RawMessage, seen map[string]string) error {
	for _, raw := range items {
		var meta struct {
			Metadata struct{ Namespace, Name string }
		}
		if err := json.Unmarshal(raw, &meta); err != nil {
			return fmt.Errorf("decoding an object: %w", err)
		}
		key := meta.Metadata.Namespace + "/" + meta.Metadata.Name
		if seen[key] == string(raw) {
			continue
		}
		seen[key] = string(raw)
		var out bytes.Buffer
		switch output {
		case "json":
			if err := json.Indent(&out, raw, "", "  "); err != nil {
				return fmt.Errorf("formatting an object: %w", err)
			}
			out.WriteByte('\n')
		case "yaml":
			y, err := yaml.JSONToYAML(raw)
			if err != nil {
				return fmt.Errorf("converting to YAML: %w", err)
			}
			out.WriteString("---\n")
			out.Write(y)
		default:
			return errors.New("unknown output " + output)
		}
		if _, err := w.Write(out.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// columnWidths are the widest cell of each column of rows.
func columnWidths(rows [][]string) []int {
	var w []int
	for _, r := range rows {
		for i, c := range r {
			if i == len(w) {
				w = append(w, 0)
			}
			w[i] = max(w[i], len(c))
		}
	}
	return w
}

// padRow renders a row with each cell padded to its column's width and
// three spaces between columns, as get's tables are.
func padRow(row []string, widths []int) string {
	var b strings.Builder
	for i, c := range row {
		b.WriteString(c)
		if i == len(row)-1 {
			break
		}
		pad := 3
		if i < len(widths) {
			pad += max(0, widths[i]-len(c))
		}
		b.WriteString(strings.Repeat(" ", pad))
	}
	return strings.TrimRight(b.String(), " ")
}
