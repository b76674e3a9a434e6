// Writes test PNGs with libpng's simplified writer, shared by the PNG reader's tests.
#pragma once
#include <gtest/gtest.h>
#include <png.h>

#include <cstdint>
#include <string>

namespace focus::testing {

// `pixels` in `format` (one of PNG_FORMAT_*), w x h; a colormap of `entries` for *_COLORMAP.
inline void write_simplified(const std::string& path, uint32_t w, uint32_t h, uint32_t format,
                             const void* pixels, const void* colormap = nullptr,
                             uint32_t entries = 0) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = w;
  img.height = h;
  img.format = format;
  img.colormap_entries = entries;
  ASSERT_TRUE(png_image_write_to_file(&img, path.c_str(), 0, pixels, 0, colormap)) << img.message;
  png_image_free(&img);
}

}  // namespace focus::testing
