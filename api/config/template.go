package config

import (
	"errors"
	"fmt"
	"text/template"
	"text/template/parse"
)

// maxTemplateBytes bounds a template's text: a host or container name is
// at most 253 characters, and Knative's templates are a few dozen.
const maxTemplateBytes = 1024

// refusedFuncs can make one execution allocate or run without bound
// (printf "%*d" with a huge width; call) and no name template needs them.
var refusedFuncs = map[string]bool{"printf": true, "call": true}

// boundedTemplate parses a ConfigMap's name template, refusing what could
// make it run or allocate without bound: it is executed for every Route or
// container, inside the control plane. Knative accepts any template; these
// refusals (a loop, a template call, printf) never serve a name, and each
// says which key and why.
func boundedTemplate(name, text string) (*template.Template, error) {
	if len(text) > maxTemplateBytes {
		return nil, fmt.Errorf("longer than %d bytes", maxTemplateBytes)
	}
	t, err := template.New(name).Parse(text)
	if err != nil {
		return nil, err
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("defines templates of its own (define, block): not allowed in a name template")
	}
	if t.Tree != nil {
		if err := bounded(t.Tree.Root); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// bounded walks a template's tree for loops, template calls and refused
// functions.
func bounded(n parse.Node) error {
	switch n := n.(type) {
	case nil:
		return nil
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := bounded(c); err != nil {
				return err
			}
		}
	case *parse.RangeNode:
		return errors.New("range loops are not allowed in a name template")
	case *parse.TemplateNode:
		return errors.New("template calls are not allowed in a name template")
	case *parse.IfNode:
		return boundedBranch(&n.BranchNode)
	case *parse.WithNode:
		return boundedBranch(&n.BranchNode)
	case *parse.ActionNode:
		return bounded(n.Pipe)
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Cmds {
			if err := bounded(c); err != nil {
				return err
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			if err := bounded(a); err != nil {
				return err
			}
		}
	case *parse.IdentifierNode:
		if refusedFuncs[n.Ident] {
			return fmt.Errorf("function %s is not allowed in a name template", n.Ident)
		}
	case *parse.ChainNode:
		return bounded(n.Node)
	}
	return nil
}

func boundedBranch(b *parse.BranchNode) error {
	for _, n := range []parse.Node{b.Pipe, b.List, b.ElseList} {
		if err := bounded(n); err != nil {
			return err
		}
	}
	return nil
}
