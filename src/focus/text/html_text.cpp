// html_to_text (html_text.hpp): libxml2's HTML parser and a walk of its tree.
#include "focus/text/html_text.hpp"

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include <climits>
#include <cstring>
#include <memory>

#include "focus/text/strings.hpp"

namespace focus {

namespace {

bool name_is(const xmlNode* n, const char* const* names) {
  for (; *names; ++names)
    if (xmlStrcasecmp(n->name, reinterpret_cast<const xmlChar*>(*names)) == 0) return true;
  return false;
}

const char* const kDropped[] = {"script", "style", "noscript", "template", nullptr};
const char* const kBlocks[] = {"p", "br", "div", "td", "th", "tr", "li", "ul", "ol", "table",
                               "h1", "h2", "h3", "h4", "h5", "h6", "title", "blockquote", "pre",
                               "hr", "dd", "dt", "dl", "center", "body", "option", nullptr};

void collect(const xmlNode* n, std::string& out, int depth) {
  if (depth > 256) return;  // libxml2 limits nesting too; this bounds the recursion here
  for (; n; n = n->next) {
    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
      if (n->content) out += reinterpret_cast<const char*>(n->content);
    } else if (n->type == XML_ELEMENT_NODE) {
      if (name_is(n, kDropped)) continue;
      const bool block = name_is(n, kBlocks);
      if (block) out += ' ';
      collect(n->children, out, depth + 1);
      if (block) out += ' ';
    }
  }
}

}  // namespace

std::string html_to_text(std::string_view html) {
  if (html.empty() || html.size() > size_t(INT_MAX)) return {};
  const int options = HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                      HTML_PARSE_NONET | HTML_PARSE_NOBLANKS;
  std::unique_ptr<xmlDoc, void (*)(xmlDocPtr)> doc(
      htmlReadMemory(html.data(), int(html.size()), nullptr, "UTF-8", options), xmlFreeDoc);
  if (!doc) return {};
  std::string out;
  collect(xmlDocGetRootElement(doc.get()), out, 0);
  // &nbsp; (U+00A0, C2 A0 in UTF-8) separates words like a space.
  for (size_t i = out.find("\xC2\xA0"); i != std::string::npos; i = out.find("\xC2\xA0", i))
    out.replace(i, 2, " ");
  return normalize_whitespace(out);
}

}  // namespace focus
