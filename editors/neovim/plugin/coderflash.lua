-- User commands; the server itself starts only after require("coderflash").setup{}.
if vim.g.loaded_coderflash then
  return
end
vim.g.loaded_coderflash = true

require("coderflash.commands").create()
