// The teacher's prompt texts. rmkit ships one file per stage (src/rmkit/distill/prompts/*.txt,
// compiled into the binary); `--prompts DIR` replaces any of them with DIR/<stage>.txt.
//
// Placeholders are `{name}`; `{{` and `}}` are literal braces; any other brace is literal text.
// Each stage knows a fixed set of names and needs all of them, so a template with an unknown or
// missing placeholder is refused when the run starts (FILE:LINE), not at call 10,000:
//   judge.txt     {question} {answer_a} {answer_b}   the pairwise 1-10 rating prompt
//   tie_note.txt  (none)                             appended to the judge prompt to re-grade ties
//   refine.txt    {question} {preferred} {rejected}  the minimal-edit refinement request
//   rescore.txt   {score}                            the third turn of the self-calibrated re-score
#pragma once
#include <map>
#include <string>
#include <vector>

namespace rmkit::distill {

class PromptTemplate {
 public:
  PromptTemplate() = default;
  // Parses `text` (from `origin`, a file path or "built-in NAME") and checks its placeholders
  // against `names` (all of which must appear). Throws FormatError "ORIGIN:LINE: ...".
  PromptTemplate(std::string text, std::string origin, const std::vector<std::string>& names);
  // Substitutes every placeholder. Values are inserted verbatim (never re-parsed).
  std::string render(const std::map<std::string, std::string>& values) const;
  const std::string& text() const { return text_; }
  const std::string& origin() const { return origin_; }

 private:
  struct Piece {
    std::string literal;      // text before the placeholder
    std::string placeholder;  // "" for the last piece
  };
  std::string text_, origin_;
  std::vector<Piece> pieces_;
};

struct PromptSet {
  PromptTemplate judge, tie_note, refine, rescore;
  // The built-in texts, with DIR/<stage>.txt files replacing them when `dir` is given (a file
  // missing from DIR keeps the built-in one; a DIR file with another name is an error, so a typo
  // such as judg.txt is not silently ignored).
  static PromptSet load(const std::string& dir = "");
  // Writes the built-in texts into `dir` (for editing).
  static void write_defaults(const std::string& dir);
  // Digest of all four texts (recorded in the work directory's manifest).
  std::string digest() const;
};

// The built-in text of a stage's prompt ("judge", "tie_note", "refine", "rescore").
const std::string& default_prompt(const std::string& stage);
const std::vector<std::string>& prompt_stages();

}  // namespace rmkit::distill
