package tokenizer

import (
	"encoding/json"
	"fmt"
	"slices"
)

// templatePiece is one item of a template: either the sequence itself or a
// special token's ids.
type templatePiece struct {
	sequence bool
	second   bool // in a pair template: the second sequence ("B")
	ids      []int32
	typeID   int32
}

// template is a post-processor that lays the sequence out between special
// tokens. It implements "TemplateProcessing" and, with a fixed layout,
// "BertProcessing" and "RobertaProcessing" (which differ only in offsets,
// which this package does not report).
type template struct {
	single []templatePiece
	added  int
	// pair lays out a sentence pair; nil when the processor has none.
	pair      []templatePiece
	pairAdded int
}

// pairProcessor is a PostProcessor that also lays out sentence pairs, as
// Hugging Face's post-processors do for encode(a, b).
type pairProcessor interface {
	// ProcessPair appends the ids and type ids of the pair (a, b) framed
	// by special tokens; ok is false when the processor has no pair
	// layout.
	ProcessPair(ids, typeIDs []int32, a, b []int32) (outIDs, outTypes []int32, ok bool)
	// AddedPair is the number of ids ProcessPair adds around a pair.
	AddedPair() int
}

func (t *template) ProcessPair(ids, typeIDs []int32, a, b []int32) ([]int32, []int32, bool) {
	if t.pair == nil {
		return ids, typeIDs, false
	}
	for _, p := range t.pair {
		src := p.ids
		if p.sequence {
			src = a
			if p.second {
				src = b
			}
		}
		ids = append(ids, src...)
		for range src {
			typeIDs = append(typeIDs, p.typeID)
		}
	}
	return ids, typeIDs, true
}

func (t *template) AddedPair() int { return t.pairAdded }

// withPair sets the pair layout of t and returns t.
func (t *template) withPair(pieces []templatePiece) *template {
	t.pair = pieces
	t.pairAdded = 0
	for _, p := range pieces {
		if !p.sequence {
			t.pairAdded += len(p.ids)
		}
	}
	return t
}

func (t *template) Process(ids, typeIDs []int32, seq []int32) ([]int32, []int32) {
	for _, p := range t.single {
		src := p.ids
		if p.sequence {
			src = seq
		}
		ids = append(ids, src...)
		for range src {
			typeIDs = append(typeIDs, p.typeID)
		}
	}
	return ids, typeIDs
}

func (t *template) Added() int { return t.added }

// maxID returns the largest special token id of the template, or -1.
func (t *template) maxID() int32 {
	m := int32(-1)
	for _, p := range append(slices.Clip(t.single), t.pair...) {
		for _, id := range p.ids {
			m = max(m, id)
		}
	}
	return m
}

// maxID returns the largest special token id of the processors, or -1.
func (q sequenceProcessor) maxID() int32 {
	m := int32(-1)
	for _, p := range q {
		if x, ok := p.(interface{ maxID() int32 }); ok {
			m = max(m, x.maxID())
		}
	}
	return m
}

func newTemplate(pieces []templatePiece) *template {
	t := &template{single: pieces}
	for _, p := range pieces {
		if !p.sequence {
			t.added += len(p.ids)
		}
	}
	return t
}

// parseTemplate decodes the "single" and "pair" templates of
// TemplateProcessing, whose items are {"SpecialToken": {"id", "type_id"}}
// or {"Sequence": {"id", "type_id"}}.
func parseTemplate(raw []byte) (PostProcessor, error) {
	var cfg struct {
		Single  json.RawMessage `json:"single"`
		Pair    json.RawMessage `json:"pair"`
		Special map[string]struct {
			ID  string  `json:"id"`
			IDs []int32 `json:"ids"`
		} `json:"special_tokens"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, formatErr(err)
	}
	parse := func(name string, raw json.RawMessage, wantSeqs int) ([]templatePiece, error) {
		var items []templateItem
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, formatErr(fmt.Errorf("%s: %v", name, err))
		}
		var pieces []templatePiece
		var seqs []string
		for i, it := range items {
			switch {
			case it.Sequence != nil:
				second := false
				switch it.Sequence.ID {
				case "A", "":
				case "B":
					second = true
				default:
					return nil, formatErr(fmt.Errorf("%s[%d]: sequence id %q, want A or B", name, i, it.Sequence.ID))
				}
				seqs = append(seqs, it.Sequence.ID)
				pieces = append(pieces, templatePiece{sequence: true, second: second, typeID: it.Sequence.TypeID})
			case it.Special != nil:
				sp, ok := cfg.Special[it.Special.ID]
				if !ok {
					return nil, formatErr(fmt.Errorf("%s[%d]: special token %q missing from special_tokens", name, i, it.Special.ID))
				}
				for _, id := range sp.IDs {
					if id < 0 {
						return nil, formatErr(fmt.Errorf("special token %q has negative id %d", it.Special.ID, id))
					}
				}
				pieces = append(pieces, templatePiece{ids: sp.IDs, typeID: it.Special.TypeID})
			default:
				return nil, formatErr(fmt.Errorf("%s[%d]: neither SpecialToken nor Sequence", name, i))
			}
		}
		if len(seqs) != wantSeqs || (wantSeqs == 2 && seqs[0] == seqs[1]) {
			return nil, formatErr(fmt.Errorf("%s template has sequences %v, want %d distinct", name, seqs, wantSeqs))
		}
		return pieces, nil
	}
	single, err := parse("single", cfg.Single, 1)
	if err != nil {
		return nil, err
	}
	t := newTemplate(single)
	if len(cfg.Pair) > 0 && string(cfg.Pair) != "null" {
		pair, err := parse("pair", cfg.Pair, 2)
		if err != nil {
			return nil, err
		}
		t.withPair(pair)
	}
	return t, nil
}

// templateItem is one item of a serialised template.
type templateItem struct {
	Special  *templateRef `json:"SpecialToken"`
	Sequence *templateRef `json:"Sequence"`
}

type templateRef struct {
	ID     string `json:"id"`
	TypeID int32  `json:"type_id"`
}

// parsePair decodes the ["token", id] pairs of BertProcessing and
// RobertaProcessing.
func parsePair(raw json.RawMessage, name string) (int32, error) {
	var pair []json.RawMessage
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return 0, formatErr(fmt.Errorf("%s: want [\"token\", id]", name))
	}
	var id int32
	if err := json.Unmarshal(pair[1], &id); err != nil || id < 0 {
		return 0, formatErr(fmt.Errorf("%s: bad id %s", name, pair[1]))
	}
	return id, nil
}

// parseClsSep decodes BertProcessing and RobertaProcessing. Their pair
// layouts are [CLS] A [SEP] B [SEP] with type ids 0 then 1 (BERT) and
// <s> A </s> </s> B </s> with type ids 0 throughout (RoBERTa, whose models
// have a single token type).
func parseClsSep(raw []byte, roberta bool) (PostProcessor, error) {
	var cfg struct {
		Sep json.RawMessage `json:"sep"`
		Cls json.RawMessage `json:"cls"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, formatErr(err)
	}
	cls, err := parsePair(cfg.Cls, "cls")
	if err != nil {
		return nil, err
	}
	sep, err := parsePair(cfg.Sep, "sep")
	if err != nil {
		return nil, err
	}
	if roberta {
		return robertaTemplate(cls, sep), nil
	}
	return bertTemplate(cls, sep), nil
}

// bertTemplate is the layout of BertProcessing: [CLS] A [SEP] and
// [CLS] A [SEP] B [SEP], the second segment with type id 1.
func bertTemplate(cls, sep int32) *template {
	return newTemplate([]templatePiece{{ids: []int32{cls}}, {sequence: true}, {ids: []int32{sep}}}).withPair(
		[]templatePiece{{ids: []int32{cls}}, {sequence: true}, {ids: []int32{sep}},
			{sequence: true, second: true, typeID: 1}, {ids: []int32{sep}, typeID: 1}})
}

// robertaTemplate is the layout of RobertaProcessing: <s> A </s> and
// <s> A </s> </s> B </s>, type ids 0.
func robertaTemplate(cls, sep int32) *template {
	return newTemplate([]templatePiece{{ids: []int32{cls}}, {sequence: true}, {ids: []int32{sep}}}).withPair(
		[]templatePiece{{ids: []int32{cls}}, {sequence: true}, {ids: []int32{sep, sep}},
			{sequence: true, second: true}, {ids: []int32{sep}}})
}

// noopProcessor is the ByteLevel post-processor, which only trims offsets
// and so leaves the ids alone.
type noopProcessor struct{}

func (noopProcessor) Process(ids, typeIDs []int32, seq []int32) ([]int32, []int32) {
	ids = append(ids, seq...)
	for range seq {
		typeIDs = append(typeIDs, 0)
	}
	return ids, typeIDs
}

func (noopProcessor) Added() int { return 0 }

// sequenceProcessor applies its post-processors in turn, each one wrapping
// the output of the previous one.
type sequenceProcessor []PostProcessor

func (q sequenceProcessor) Process(ids, typeIDs []int32, seq []int32) ([]int32, []int32) {
	if len(q) == 0 {
		return noopProcessor{}.Process(ids, typeIDs, seq)
	}
	cur := seq
	var tmp, tmpTypes []int32
	for i, p := range q {
		if i == len(q)-1 {
			return p.Process(ids, typeIDs, cur)
		}
		tmp, tmpTypes = p.Process(tmp[:0], tmpTypes[:0], cur)
		cur = append([]int32(nil), tmp...)
	}
	return ids, typeIDs
}

// ProcessPair lays out a pair when exactly one of the processors has a
// pair layout and the others leave ids alone (ByteLevel), the combination
// Hugging Face's Sequence post-processors use in practice.
func (q sequenceProcessor) ProcessPair(ids, typeIDs []int32, a, b []int32) ([]int32, []int32, bool) {
	if p := q.pairStage(); p != nil {
		return p.ProcessPair(ids, typeIDs, a, b)
	}
	return ids, typeIDs, false
}

func (q sequenceProcessor) AddedPair() int {
	if p := q.pairStage(); p != nil {
		return p.AddedPair()
	}
	return 0
}

func (q sequenceProcessor) pairStage() pairProcessor {
	var found pairProcessor
	for _, p := range q {
		switch x := p.(type) {
		case noopProcessor:
		case pairProcessor:
			if found != nil {
				return nil
			}
			found = x
		default:
			return nil
		}
	}
	return found
}

func (q sequenceProcessor) Added() int {
	n := 0
	for _, p := range q {
		n += p.Added()
	}
	return n
}

func init() {
	postProcessorCtors["TemplateProcessing"] = func(raw []byte, _ Model) (PostProcessor, error) { return parseTemplate(raw) }
	postProcessorCtors["BertProcessing"] = func(raw []byte, _ Model) (PostProcessor, error) { return parseClsSep(raw, false) }
	postProcessorCtors["RobertaProcessing"] = func(raw []byte, _ Model) (PostProcessor, error) { return parseClsSep(raw, true) }
	postProcessorCtors["ByteLevel"] = func([]byte, Model) (PostProcessor, error) { return noopProcessor{}, nil }
	postProcessorCtors["Sequence"] = func(raw []byte, m Model) (PostProcessor, error) {
		q, err := buildSequence(raw, "processors", func(r []byte) (PostProcessor, error) { return newPostProcessor(r, m) })
		if err != nil {
			return nil, err
		}
		return sequenceProcessor(q), nil
	}
}
