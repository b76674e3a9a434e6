// The visible text of an HTML document, through libxml2's HTML parser (the only file that calls
// libxml2): htmlReadMemory in recovery mode with no network access, so broken markup (unclosed
// tags, stray '<') still gives text. Entities and character references are decoded; the contents
// of <script>, <style>, <noscript>... and comments are dropped; block elements (<p>, <br>, <div>,
// table cells, list items, headings, <title>) separate words. Whitespace is collapsed to single
// spaces. Limits: no CSS (text hidden by a style is kept), no alt/href attributes.
//
//   html_to_text("<p>caf&eacute;</p><script>x()</script>")  // "café"
#pragma once
#include <string>
#include <string_view>

namespace focus {

// `html` is read as UTF-8 (a <meta charset> inside is not obeyed: mail readers convert the part
// to UTF-8 before). Empty or markup-only input gives "". Never throws on bad markup.
std::string html_to_text(std::string_view html);

}  // namespace focus
