// report.html of `rmkit basemodel analyze`: one self-contained page (inline SVG via
// eval/metrics/svg.h, inline CSS, no scripts or external URLs) rendered from basemodel.json.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace rmkit::basemodel {

std::string render_basemodel_report(const nlohmann::json& analysis, const std::string& subtitle = "");
// render_basemodel_report() written atomically.
void write_basemodel_report(const std::string& path, const nlohmann::json& analysis, const std::string& subtitle = "");

}  // namespace rmkit::basemodel
