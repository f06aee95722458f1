package tokenizer_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/embedpipe/embedpipe/encoder/tokenizer"
)

// Load reads a model directory; EncodeTo appends the ids, special tokens
// included, to a caller-owned buffer that can be reused for the next text.
func ExampleTokenizer_EncodeTo() {
	tk, err := tokenizer.Load("../../testdata/tiny-bert")
	if err != nil {
		log.Fatal(err)
	}
	ids, truncated := tk.EncodeTo(nil, "Héllo, wörld! Tokenizers", 0)
	fmt.Println(tk.Kind(), ids, truncated)
	toks := make([]string, len(ids))
	for i, id := range ids {
		toks[i] = tk.IDToToken(id)
	}
	fmt.Println(strings.Join(toks, " "))

	ids, truncated = tk.EncodeTo(ids[:0], "Héllo, wörld! Tokenizers", 5)
	fmt.Println(ids, truncated)
	// Output:
	// WordPiece [101 7592 1010 2088 999 19204 17629 2015 102] false
	// [CLS] hello , world ! token ##izer ##s [SEP]
	// [101 7592 1010 2088 102] true
}
